"""Nearest-class-mean accuracy of frozen features."""
import math
from typing import Dict, Sequence

import torch
import torch.nn.functional as F

from decssl_mm.registry import EVALUATIONS
from .base import BaseEvaluation, EvalContext, FrozenFeatures

__all__ = ['NearestMeanEvaluation', 'class_means', 'nearest_mean_scores']


def class_means(feats: torch.Tensor, labels: torch.Tensor,
                num_classes: int) -> torch.Tensor:
    """Mean feature of every class, ``num_classes x D`` (zero for a class
    without a sample).

    Args:
        feats (Tensor): ``N x D`` features.
        labels (Tensor): ``N`` labels in ``[0, num_classes)``.
        num_classes (int): Number of classes.
    """
    labels = labels.reshape(-1).long()
    sums = feats.new_zeros(num_classes, feats.shape[1])
    sums.index_add_(0, labels, feats)
    counts = torch.bincount(labels, minlength=num_classes).to(feats)
    return sums / counts.clamp(min=1)[:, None]


def nearest_mean_scores(feats: FrozenFeatures,
                        normalize: bool = True) -> torch.Tensor:
    """Cosine similarity of every query to every class mean of the bank.

    Args:
        feats (FrozenFeatures): Bank and query features.
        normalize (bool): L2-normalise the features before averaging.
            Defaults to True.

    Returns:
        Tensor: ``M x C`` scores; ``-inf`` for a class absent from the bank.
    """
    num_classes = feats.num_classes
    bank, query = feats.train_x.float(), feats.test_x.float()
    if normalize:
        bank, query = F.normalize(bank, dim=1), F.normalize(query, dim=1)
    means = F.normalize(class_means(bank, feats.train_y, num_classes), dim=1)
    scores = F.normalize(query, dim=1) @ means.T
    present = torch.bincount(feats.train_y.reshape(-1).long(),
                             minlength=num_classes) > 0
    return scores.masked_fill(~present[None], -math.inf)


@EVALUATIONS.register_module('ncm')
class NearestMeanEvaluation(BaseEvaluation):
    """Nearest class mean: each query takes the class whose mean bank
    feature is the most cosine-similar. No training and no neighbour
    count to choose: how well the classes sit apart around their centres.
    Metrics ``top1``, ``top5``.

    Args:
        normalize (bool): Average L2-normalised features. Defaults to True.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        **kwargs: ``feature`` and ``bn_reestimate`` of
            :class:`BaseEvaluation`.
    """

    label = 'nearest class mean'
    report = ('top1', 'top5')

    def __init__(self, normalize: bool = True,
                 topk: Sequence[int] = (1, 5), **kwargs) -> None:
        super().__init__(**kwargs)
        self.normalize = bool(normalize)
        self.topk = tuple(topk)

    def settings(self) -> dict:
        """``normalize``."""
        return dict(normalize=self.normalize)

    def compute(self, ctx: EvalContext) -> Dict[str, float]:
        """Top-k accuracies of the queries; NaN for non-finite features."""
        feats = ctx.features(self.feature)
        if not feats.finite:
            return {f'top{t}': math.nan for t in self.topk}
        scores = nearest_mean_scores(feats, self.normalize)
        order = scores.argsort(dim=1, descending=True, stable=True)
        hits = order == feats.test_y.reshape(-1).long()[:, None]
        num_classes = scores.shape[1]
        return {f'top{t}': float(
            hits[:, :min(t, num_classes)].any(1).float().mean() * 100)
            for t in self.topk}
