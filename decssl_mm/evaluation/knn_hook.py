"""Periodic kNN evaluation of the global model: :class:`EvaluationHook`
with the kNN settings as arguments."""
from typing import Optional, Sequence, Union

from decssl_mm.registry import HOOKS
from .evaluation_hook import EvaluationHook
from .evaluations import BaseEvaluation

__all__ = ['KNNEvalHook']


@HOOKS.register_module()
class KNNEvalHook(EvaluationHook):
    """Log the weighted-kNN accuracy of the global model every few epochs.

    :class:`EvaluationHook` whose first evaluation is ``'knn'`` with the
    settings given here: scalars ``knn/top1``, ``knn/top5`` (and
    ``knn/top1_untrained_init``, ``knn/top1_untrained_default``, ...).

    Args:
        train_dataloader (dict, optional): See :class:`EvaluationHook`.
        val_dataloader (dict, optional): See :class:`EvaluationHook`.
        interval (int): Evaluate every ``interval`` epochs. Defaults to 1.
        k (int): Number of neighbours. Defaults to 200.
        temperature (float): Temperature of the neighbour weights.
            Defaults to 0.1.
        feature (str): ``'backbone'`` (default) or ``'neck'``.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        prefix (str): Name prefix of the kNN scalars. Defaults to
            ``'knn'``.
        untrained_reference (bool): Also report the untrained references.
            Defaults to True.
        evaluations (Sequence[str | dict]): More registered evaluations
            after kNN (e.g. ``('linear', 'ncm')``). Defaults to none.
    """

    def __init__(self,
                 train_dataloader: Optional[dict] = None,
                 val_dataloader: Optional[dict] = None,
                 interval: int = 1,
                 k: int = 200,
                 temperature: float = 0.1,
                 feature: str = 'backbone',
                 topk: Sequence[int] = (1, 5),
                 prefix: str = 'knn',
                 untrained_reference: bool = True,
                 evaluations: Sequence[Union[str, dict]] = ()) -> None:
        knn = dict(type='knn', k=k, temperature=temperature,
                   feature=feature, topk=tuple(topk))
        super().__init__([knn] + list(evaluations), train_dataloader,
                         val_dataloader, interval, untrained_reference)
        self.k = k
        self.temperature = temperature
        self.feature = feature
        self.topk = tuple(topk)
        self.prefix = prefix

    def scalar_prefix(self, evaluation: BaseEvaluation) -> str:
        """``prefix`` for the kNN figures, the name for the others."""
        if evaluation is self.evaluations[0]:
            return self.prefix
        return evaluation.name
