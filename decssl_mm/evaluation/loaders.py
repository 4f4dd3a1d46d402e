"""Where a config keeps its evaluation data.

One rule for every evaluation (``tools/analysis/knn_eval.py``,
``tools/analysis/head_diagnosis.py``, the sweep, :class:`EvaluationHook`): the
labelled, un-augmented *bank* split (kNN feature bank, linear-probe training
set) and *query* split (kNN queries, probe test set, a classifier's own
head) are

1. the top-level ``knn_train_dataloader`` and ``knn_val_dataloader``;
2. else the ``train_dataloader`` and ``val_dataloader`` of an
   ``EvaluationHook`` (or ``KNNEvalHook``) in ``custom_hooks``.

A config with neither is an error naming the config and these keys; the
training data is never used in their place.
"""
import copy
from typing import Any, Optional, Tuple

__all__ = ['EVAL_LOADER_KEYS', 'EvalConfigError', 'find_eval_loaders',
           'override_eval_loader']

EVAL_LOADER_KEYS = (
    ('knn_train_dataloader', 'knn_val_dataloader'),
    ('custom_hooks[type=EvaluationHook|KNNEvalHook].train_dataloader',
     'custom_hooks[type=EvaluationHook|KNNEvalHook].val_dataloader'),
)
_HOOK_TYPES = ('EvaluationHook', 'KNNEvalHook')


class EvalConfigError(ValueError):
    """A config that cannot be evaluated (the message names the config and
    the keys)."""


def _is_loader(cfg: Any) -> bool:
    return isinstance(cfg, dict) and cfg.get('dataset') is not None


def _hook_loaders(cfg: Any) -> Tuple[Optional[dict], Optional[dict]]:
    for hook in cfg.get('custom_hooks') or ():
        if not isinstance(hook, dict):
            continue
        if str(hook.get('type', '')).split('.')[-1] in _HOOK_TYPES:
            return hook.get('train_dataloader'), hook.get('val_dataloader')
    return None, None


def find_eval_loaders(cfg: Any, source: Optional[str] = None
                      ) -> Tuple[dict, dict]:
    """The (bank, query) dataloader configs of a config.

    Args:
        cfg (Config | dict): The whole config.
        source (str, optional): Its file name, for the error message
            (default: ``cfg.filename`` when set).

    Returns:
        tuple: Deep copies of the ``(bank, query)`` dataloader configs.

    Raises:
        EvalConfigError: If neither pair of keys (see the module docstring)
            gives two dataloader configs with a ``dataset``.
    """
    pairs = ((cfg.get('knn_train_dataloader'), cfg.get('knn_val_dataloader')),
             _hook_loaders(cfg))
    for bank, query in pairs:
        if _is_loader(bank) and _is_loader(query):
            return copy.deepcopy(dict(bank)), copy.deepcopy(dict(query))
    name = source or getattr(cfg, 'filename', None) or '<config>'
    looked = '; '.join(' + '.join(pair) for pair in EVAL_LOADER_KEYS)
    raise EvalConfigError(
        f'{name}: no evaluation data: looked for {looked} (labelled, '
        'un-augmented dataloader configs with a dataset); add '
        'knn_train_dataloader and knn_val_dataloader to the config, e.g. '
        "from a '_base_' file of configs/benchmarks/_base_/datasets/")


def override_eval_loader(loader: dict,
                         subset: Optional[int] = None,
                         num_workers: Optional[int] = None) -> dict:
    """A copy of a dataloader config with another subset / worker count.

    Args:
        loader (dict): A dataloader config.
        subset (int, optional): First ``subset`` samples of its dataset.
        num_workers (int, optional): Dataloader workers.

    Returns:
        dict: The changed copy.
    """
    loader = copy.deepcopy(dict(loader))
    if subset:
        loader['dataset'] = dict(loader['dataset'], subset=subset)
    if num_workers is not None:
        loader['num_workers'] = num_workers
    return loader
