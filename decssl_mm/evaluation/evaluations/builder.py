"""Evaluations by name: ``'knn'``, ``'linear_bnre'``, ``dict(type='ncm')``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from decssl_mm.registry import EVALUATIONS
from .base import BNRE_SUFFIX, BaseEvaluation

__all__ = ['EvaluationNameError', 'build_evaluation', 'build_evaluations',
           'evaluation_names', 'split_evaluation_name']

EvalSpec = Union[str, dict, BaseEvaluation]


class EvaluationNameError(ValueError):
    """An evaluation name that is not registered (the message lists the
    registered ones and names where the name came from)."""


def evaluation_names() -> List[str]:
    """The registered evaluation names, in registration order (each also
    exists as ``<name>_bnre``)."""
    EVALUATIONS.import_from_location()
    return list(EVALUATIONS.module_dict)


def split_evaluation_name(name: str) -> Tuple[str, bool]:
    """``'knn_bnre'`` -> ``('knn', True)``; ``'knn'`` -> ``('knn', False)``.
    """
    if name.endswith(BNRE_SUFFIX) and name[:-len(BNRE_SUFFIX)]:
        return name[:-len(BNRE_SUFFIX)], True
    return name, False


def _unknown(name: str, source: str) -> EvaluationNameError:
    names = ', '.join(evaluation_names())
    return EvaluationNameError(
        f'{source}: unknown evaluation {name!r}; registered: {names} (each '
        f'also as <name>{BNRE_SUFFIX}: after BatchNorm re-estimation on the '
        'bank images); a new one is a class registered in EVALUATIONS '
        '(decssl_mm/evaluation/evaluations/)')


def build_evaluation(spec: EvalSpec,
                     options: Optional[Dict[str, dict]] = None,
                     source: str = 'evaluations') -> BaseEvaluation:
    """Build one evaluation.

    Args:
        spec (str | dict | BaseEvaluation): A registered name, optionally
            with the suffix ``_bnre`` (BatchNorm re-estimation), or a dict
            with that name as ``type`` and settings; a built evaluation is
            returned as is.
        options (dict, optional): Settings by registered name (without
            ``_bnre``), under those of a dict ``spec``.
        source (str): Where the name came from (a config key or a
            command-line flag), for the error message.

    Returns:
        BaseEvaluation: The evaluation.

    Raises:
        EvaluationNameError: If the name is not registered.
    """
    if isinstance(spec, BaseEvaluation):
        return spec
    spec = dict(type=spec) if isinstance(spec, str) else dict(spec)
    name = spec.pop('type', None)
    if not isinstance(name, str):
        raise EvaluationNameError(f'{source}: an evaluation needs a name '
                                  f'(str or dict type=...), got {name!r}')
    base, bnre = split_evaluation_name(name)
    if base not in evaluation_names():
        raise _unknown(name, source)
    kwargs = dict((options or {}).get(base) or {})
    kwargs.update(spec)
    if bnre:
        kwargs['bn_reestimate'] = True
    return EVALUATIONS.get(base)(**kwargs)


def build_evaluations(specs: Sequence[EvalSpec],
                      options: Optional[Dict[str, dict]] = None,
                      source: str = 'evaluations') -> List[BaseEvaluation]:
    """Build several evaluations (see :func:`build_evaluation`).

    Raises:
        EvaluationNameError: On an unregistered name.
        ValueError: If two of them have the same name.
    """
    if isinstance(specs, (str, dict)):
        specs = [specs]
    evaluations = [build_evaluation(s, options, source) for s in specs]
    names = [e.name for e in evaluations]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f'{source}: evaluation {twice[0]!r} given twice')
    return evaluations
