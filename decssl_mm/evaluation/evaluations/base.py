"""What every evaluation shares: the context it reads and its base class.

An evaluation turns one model into a few figures (percent), e.g. the
weighted-kNN top-1 of its frozen features. It reads an
:class:`EvalContext`: the model, the labelled *bank* and *query* loaders
(:func:`decssl_mm.evaluation.find_eval_loaders`), the seed and the device,
and the frozen features of both splits, extracted once per model and shared
by every evaluation that asks for them.
"""
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn

from decssl_mm.registry import EVALUATIONS
from ..knn import extract_features

__all__ = ['BNRE_SUFFIX', 'BaseEvaluation', 'EvalContext', 'FrozenFeatures']

# ``<name>_bnre``: evaluation ``<name>`` of a copy of the model whose
# BatchNorm statistics were re-estimated on the bank images.
BNRE_SUFFIX = '_bnre'


@dataclass
class FrozenFeatures:
    """Features and labels of the bank (``train``) and query (``test``)
    splits, ``N x D`` float32 and ``N`` int64 on the CPU."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def num_classes(self) -> int:
        """The largest label of either split + 1."""
        labels = torch.cat([self.train_y.reshape(-1),
                            self.test_y.reshape(-1)])
        return int(labels.max()) + 1

    @property
    def finite(self) -> bool:
        """Whether every feature is finite (False for a diverged model)."""
        return bool(torch.isfinite(self.train_x).all()
                    and torch.isfinite(self.test_x).all())


class EvalContext:
    """The inputs of the evaluations of one model.

    Args:
        model (nn.Module): An mmpretrain model (``backbone``,
            ``data_preprocessor``; wrappers are removed where read).
        train_loader (Iterable): Labelled batches of the bank split.
        val_loader (Iterable): Labelled batches of the query split.
        seed (int): Seed of evaluations that draw (e.g. the probe's
            initialisation). Defaults to 0.
        device (str, optional): Where evaluations that train run.
        info (dict, optional): Receives ``<tag>feature_s`` (seconds of the
            feature extraction) and ``feat_dim``.
        tag (str): Prefix of the ``info`` keys (``'bnre_'`` for a model
            whose BatchNorm statistics were re-estimated). Defaults to ''.
    """

    def __init__(self,
                 model: nn.Module,
                 train_loader: Any,
                 val_loader: Any,
                 seed: int = 0,
                 device: Optional[str] = None,
                 info: Optional[dict] = None,
                 tag: str = '') -> None:
        self.model = model
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.seed = int(seed)
        self.device = device
        self.info = info if info is not None else {}
        self.tag = tag
        self._features: Dict[str, FrozenFeatures] = {}

    def features(self, feature: str = 'backbone') -> FrozenFeatures:
        """The frozen features of both splits (extracted at the first call).

        Args:
            feature (str): ``'backbone'`` (the global-average-pooled last
                backbone output) or ``'neck'``.

        Returns:
            FrozenFeatures: Features and labels of both splits.
        """
        if feature not in self._features:
            t0 = time.time()
            train_x, train_y = extract_features(self.model,
                                                self.train_loader, feature)
            test_x, test_y = extract_features(self.model, self.val_loader,
                                              feature)
            self.info[f'{self.tag}feature_s'] = round(time.time() - t0, 2)
            self.info['feat_dim'] = int(train_x.shape[1])
            self._features[feature] = FrozenFeatures(train_x, train_y,
                                                     test_x, test_y)
        return self._features[feature]


class BaseEvaluation:
    """Base class of the evaluations registered in ``EVALUATIONS``.

    A subclass is registered under a short name, which prefixes its metrics
    (``knn`` -> ``knn_top1``) and chooses it in configs and on command
    lines, and implements :meth:`compute`. The caller (see
    :func:`~decssl_mm.evaluation.evaluations.runner.run_evaluations`) runs it
    on the trained model and on both untrained references alike.

    Args:
        feature (str): Which frozen feature it reads, ``'backbone'`` or
            ``'neck'``. Defaults to ``'backbone'``.
        bn_reestimate (bool): Evaluate a copy of the model whose BatchNorm
            running statistics were re-estimated on the bank images
            (:func:`decssl_mm.evaluation.bn_recalibration.recalibrated_copy`);
            its name gets the suffix ``_bnre``. Defaults to False.
    """

    #: Human name of the figures, e.g. ``'kNN'``.
    label: str = ''
    #: Metrics printed in summaries (the first is the headline).
    report: Tuple[str, ...] = ('top1', )
    #: ``info`` key (``<timing>_s``) of the seconds :meth:`compute` takes.
    timing: Optional[str] = None

    def __init__(self, feature: str = 'backbone',
                 bn_reestimate: bool = False) -> None:
        if feature not in ('backbone', 'neck'):
            raise ValueError(f"{type(self).__name__}: feature must be "
                             f"'backbone' or 'neck', got {feature!r}")
        self.feature = feature
        self.bn_reestimate = bool(bn_reestimate)

    @property
    def base_name(self) -> str:
        """The name it is registered under in ``EVALUATIONS``."""
        for name, cls in EVALUATIONS.module_dict.items():
            if cls is type(self):
                return name
        raise KeyError(f'{type(self).__name__} is not registered in '
                       'EVALUATIONS')

    @property
    def name(self) -> str:
        """Its metric prefix: the registry name, ``_bnre`` appended with
        ``bn_reestimate``."""
        return self.base_name + (BNRE_SUFFIX if self.bn_reestimate else '')

    def settings(self) -> dict:
        """The settings that change its figures (a sweep keys its points
        by them). Defaults to none."""
        return {}

    def describe(self) -> str:
        """``label (setting=value, ...)`` for logs."""
        text = ', '.join(f'{k}={v}' for k, v in self.settings().items())
        label = self.label or self.base_name
        return f'{label} ({text})' if text else label

    def compute(self, ctx: EvalContext) -> Dict[str, float]:
        """The figures of ``ctx.model``.

        Args:
            ctx (EvalContext): The model, data, seed and shared features.

        Returns:
            dict: ``{metric: value}`` in percent, NaN when not defined
            (e.g. non-finite features).
        """
        raise NotImplementedError
