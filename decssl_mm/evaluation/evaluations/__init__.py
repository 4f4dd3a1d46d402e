"""Evaluations by registry (``EVALUATIONS``): one registered class per file.

Every module of this package is imported with it, so a new evaluation is
one file here (a :class:`BaseEvaluation` subclass registered in
``EVALUATIONS``) and its name in a config (``EvaluationHook``'s
``evaluations``) or on a command line (``--eval`` of
``tools/analysis/knn_eval.py`` and ``tools/analysis/sweep.py``).
"""
import importlib
import pkgutil

from .base import BNRE_SUFFIX, BaseEvaluation, EvalContext, FrozenFeatures
from .builder import (EvaluationNameError, build_evaluation,
                      build_evaluations, evaluation_names,
                      split_evaluation_name)
from .runner import run_evaluations

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f'{__name__}.{_module}')

__all__ = [
    'BNRE_SUFFIX', 'BaseEvaluation', 'EvalContext', 'FrozenFeatures',
    'EvaluationNameError', 'build_evaluation', 'build_evaluations',
    'evaluation_names', 'split_evaluation_name', 'run_evaluations'
]
