"""Build the evaluated model of a config and load any checkpoint into it."""
import os.path as osp
from typing import Any, Optional, Tuple

import torch.nn as nn

from .export import (BACKBONE_PREFIX, _round_of, check_backbone_compat,
                     load_checkpoint_dict, select_model_state,
                     split_backbone_state)
from .linear_probe import has_classifier_head
from .model_cfg import model_cfg_like_runner

__all__ = ['eval_model_cfg', 'load_eval_model']

_WRAPPERS = ('FeatARC', )


def eval_model_cfg(cfg: Any) -> dict:
    """The model config that evaluation builds, completed like the Runner.

    A wrapper model (``FeatARC``) is evaluated as its inner ``algorithm``:
    the checkpoint keys are the algorithm's. The config's top-level
    ``data_preprocessor`` is given to a model without one
    (:func:`decssl_mm.utils.tool_config.model_cfg_like_runner`).

    Args:
        cfg (Config | dict): The whole config (with ``model``).

    Returns:
        dict: A copy of the model config.

    Raises:
        KeyError: If the config has no ``model``.
    """
    model = cfg.get('model')
    if not isinstance(model, dict):
        raise KeyError(f'{getattr(cfg, "filename", None) or "<config>"}: '
                       "the config has no 'model' to evaluate")
    if str(model.get('type', '')).split('.')[-1] in _WRAPPERS:
        inner = dict(model['algorithm'])
        if model.get('data_preprocessor') is not None:
            inner.setdefault('data_preprocessor', model['data_preprocessor'])
        model = inner
    return model_cfg_like_runner(cfg, model)


def _is_whole_model(state: dict) -> bool:
    """Whether a state dict holds more than a backbone."""
    prefixes = (BACKBONE_PREFIX, 'module.' + BACKBONE_PREFIX)
    return any(k.startswith(prefixes) for k in state) and \
        any(not k.startswith(prefixes) for k in state)


def load_eval_model(cfg: Any,
                    checkpoint: str,
                    cluster: Optional[int] = None,
                    device: str = 'cpu',
                    model: Optional[nn.Module] = None
                    ) -> Tuple[nn.Module, dict]:
    """Build the config's model and load a checkpoint of any kind into it.

    Accepted checkpoints:

    - a federated / mmengine checkpoint (``state_dict``); for clustered
      runs (FeatARC: ``federated.extra.clusters``) the model of ``cluster``,
      by default the chosen one (``federated.extra.chosen``);
    - a backbone file of ``tools/model_converters/extract_backbone.py``
      (``prefixed`` or ``bare`` layout).

    A classifier (e.g. Dec-SL) whose checkpoint holds the whole model is
    loaded whole (its own head included); any other model gets the backbone
    only, after :func:`check_backbone_compat` (depth, stem, widths). Every
    load is strict.

    Args:
        cfg (Config | dict): The config whose ``model`` is built (see
            :func:`eval_model_cfg`).
        checkpoint (str): The checkpoint file.
        cluster (int, optional): Cluster model of a clustered checkpoint.
        device (str): Where to put the model. Defaults to ``'cpu'``.
        model (nn.Module, optional): The model, already built from
            :func:`eval_model_cfg` of ``cfg`` (default: built here).

    Returns:
        tuple: ``(model, info)``; info holds ``checkpoint`` (absolute path),
        ``round`` (-1 when unknown), ``cluster`` (-1: the global model),
        ``num_clusters`` and ``loaded`` (``'model'`` or ``'backbone'``).

    Raises:
        FileNotFoundError: If the checkpoint is missing.
        ValueError: Naming the file, if it holds no fitting weights or
            ``cluster`` does not exist.
    """
    from decssl_mm.registry import MODELS
    model_cfg = eval_model_cfg(cfg)
    if model is None:
        model = MODELS.build(model_cfg)
    ckpt = load_checkpoint_dict(checkpoint)
    state, cluster_idx, num_clusters = select_model_state(
        ckpt, checkpoint, cluster)
    info = dict(checkpoint=osp.abspath(checkpoint), round=_round_of(ckpt),
                cluster=cluster_idx, num_clusters=num_clusters)
    if has_classifier_head(model) and _is_whole_model(state):
        state = {k[len('module.'):] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        model.load_state_dict(state, strict=True)
        info['loaded'] = 'model'
    else:
        backbone = split_backbone_state(state, checkpoint)
        check_backbone_compat(backbone, model_cfg, checkpoint)
        model.backbone.load_state_dict(backbone, strict=True)
        info['loaded'] = 'backbone'
    return model.to(device), info
