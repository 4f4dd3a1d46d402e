"""Which evaluations a sweep runs, with which settings: by registry name
(``--eval``), settings from ``--knn-*``, ``--probe-*`` and
``--eval-options``."""
import argparse
from typing import Dict, List, Sequence

from .grid import SweepError, parse_value, rel

__all__ = ['eval_options', 'eval_settings', 'parse_eval_options',
           'sweep_evaluations']


def parse_eval_options(items: Sequence[str]) -> Dict[str, dict]:
    """``['ncm.normalize=False', 'linear.momentum=0.8']`` ->
    ``{'ncm': {'normalize': False}, 'linear': {'momentum': 0.8}}``.

    Raises:
        SweepError: On an item that is not ``NAME.KEY=VALUE``.
    """
    out: Dict[str, dict] = {}
    for item in items or ():
        target, sep, value = item.partition('=')
        name, dot, key = target.partition('.')
        if not (sep and dot and name and key):
            raise SweepError(f'--eval-options: {item!r} is not '
                             'NAME.KEY=VALUE (e.g. ncm.normalize=False)')
        out.setdefault(name, {})[key] = parse_value(value)
    return out


def eval_options(args: argparse.Namespace) -> Dict[str, dict]:
    """Settings by evaluation name: ``--eval-options``, with ``knn`` from
    ``--knn-k``/``--knn-t`` and ``linear`` from ``--probe-*``."""
    out = {name: dict(value) for name, value in
           (getattr(args, 'eval_options', None) or {}).items()}
    out['knn'] = dict(out.get('knn') or {}, k=args.knn_k,
                      temperature=args.knn_t)
    out['linear'] = dict(out.get('linear') or {}, epochs=args.probe_epochs,
                         lr=args.probe_lr, batch_size=args.probe_batch_size,
                         weight_decay=args.probe_wd)
    return out


def sweep_evaluations(args: argparse.Namespace) -> List:
    """The built evaluations of ``--eval`` (registered names).

    Raises:
        EvaluationNameError: On a name (of ``--eval`` or
            ``--eval-options``) that is not registered, listing the
            registered ones.
    """
    from decssl_mm.evaluation.evaluations import (EvaluationNameError,
                                                  build_evaluations,
                                                  evaluation_names)
    names = evaluation_names()
    for name in getattr(args, 'eval_options', None) or {}:
        if name not in names:
            raise EvaluationNameError(
                f'--eval-options: unknown evaluation {name!r}; registered: '
                f'{", ".join(names)}')
    return build_evaluations(args.eval, eval_options(args), '--eval')


def eval_settings(args: argparse.Namespace) -> dict:
    """The evaluation settings that enter a point's key: the names, and
    the settings of each evaluation run without BatchNorm re-estimation
    under its name (``knn``: ``k``, ``temperature``; ``linear``: ``epochs``,
    ``lr``, ``batch_size``, ``weight_decay``), the subsets and the
    ``--eval-loaders`` file."""
    out = {'eval': list(args.eval)}
    for evaluation in sweep_evaluations(args):
        if not evaluation.bn_reestimate:
            out[evaluation.base_name] = evaluation.settings()
    out['train_subset'] = args.eval_train_subset
    out['test_subset'] = args.eval_test_subset
    if getattr(args, 'eval_loaders', None):
        out['eval_loaders'] = rel(args.eval_loaders)
    return out
