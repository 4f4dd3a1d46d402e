"""The feature-based linear probe (:mod:`decssl_mm.evaluation.
linear_probe`)."""
from typing import Dict, Optional

from decssl_mm.registry import EVALUATIONS
from ..linear_probe import train_linear_probe
from .base import BaseEvaluation, EvalContext

__all__ = ['LinearProbeEvaluation']


@EVALUATIONS.register_module('linear')
class LinearProbeEvaluation(BaseEvaluation):
    """Multinomial logistic regression on standardised frozen features,
    seeded by the context's seed, last epoch reported
    (:func:`decssl_mm.evaluation.train_linear_probe`). Metrics ``top1``,
    ``top5``, ``train_top1``.

    Args:
        epochs (int): Passes over the bank features. Defaults to 100.
        lr (float): Peak learning rate (cosine). Defaults to 0.5.
        batch_size (int, optional): Minibatch; None or 0: full batch.
            Defaults to 256.
        weight_decay (float): L2 penalty on the weights. Defaults to 1e-4.
        feature (str): ``'backbone'`` or ``'neck'``. Defaults to
            ``'backbone'``.
        bn_reestimate (bool): See :class:`BaseEvaluation`.
        **probe_kwargs: Other arguments of :func:`train_linear_probe`
            (``momentum``, ``standardize``, ``topk``).
    """

    label = 'linear probe'
    timing = 'probe'

    def __init__(self,
                 epochs: int = 100,
                 lr: float = 0.5,
                 batch_size: Optional[int] = 256,
                 weight_decay: float = 1e-4,
                 feature: str = 'backbone',
                 bn_reestimate: bool = False,
                 **probe_kwargs) -> None:
        super().__init__(feature=feature, bn_reestimate=bn_reestimate)
        self.probe = dict(epochs=epochs, lr=lr, batch_size=batch_size,
                          weight_decay=weight_decay, **probe_kwargs)

    def settings(self) -> dict:
        """``epochs``, ``lr``, ``batch_size``, ``weight_decay`` (and any
        other probe argument given)."""
        return dict(self.probe)

    def compute(self, ctx: EvalContext) -> Dict[str, float]:
        """Test top-k and train top-1 of the probe after its last epoch."""
        feats = ctx.features(self.feature)
        return train_linear_probe(feats.train_x, feats.train_y,
                                  feats.test_x, feats.test_y,
                                  num_classes=feats.num_classes,
                                  seed=ctx.seed, device=ctx.device,
                                  **self.probe)
