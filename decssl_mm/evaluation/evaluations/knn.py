"""Weighted k-nearest-neighbour accuracy of frozen features."""
import math
from typing import Dict, Sequence

from decssl_mm.registry import EVALUATIONS
from ..knn import knn_accuracy
from .base import BaseEvaluation, EvalContext

__all__ = ['KNNEvaluation']


@EVALUATIONS.register_module('knn')
class KNNEvaluation(BaseEvaluation):
    """Weighted kNN on cosine similarity (:func:`decssl_mm.evaluation.
    knn_accuracy`): each query votes with its ``k`` most similar bank
    features, weights ``exp(s / T)``. Metrics ``top1``, ``top5``.

    Args:
        k (int): Number of neighbours. Defaults to 200.
        temperature (float): ``T`` of the weights. Defaults to 0.1.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        **kwargs: ``feature`` and ``bn_reestimate`` of
            :class:`BaseEvaluation`.
    """

    label = 'kNN'
    report = ('top1', 'top5')

    def __init__(self,
                 k: int = 200,
                 temperature: float = 0.1,
                 topk: Sequence[int] = (1, 5),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.temperature = temperature
        self.topk = tuple(topk)

    def settings(self) -> dict:
        """``k`` and ``temperature``."""
        return dict(k=self.k, temperature=self.temperature)

    def describe(self) -> str:
        """``kNN (k=200, T=0.1)``."""
        return f'kNN (k={self.k}, T={self.temperature})'

    def compute(self, ctx: EvalContext) -> Dict[str, float]:
        """Top-k accuracies of the queries; NaN for non-finite features."""
        feats = ctx.features(self.feature)
        if not feats.finite:
            return {f'top{t}': math.nan for t in self.topk}
        return knn_accuracy(feats.train_x, feats.train_y, feats.test_x,
                            feats.test_y, k=self.k,
                            temperature=self.temperature, topk=self.topk,
                            num_classes=feats.num_classes)
