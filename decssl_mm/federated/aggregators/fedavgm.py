"""FedAvgM: FedAvg with server momentum."""
from typing import Dict, Optional, Sequence

import torch

from decssl_mm.registry import AGGREGATORS
from .base_aggregator import DEFAULT_LOCAL_PATTERNS, BaseAggregator


@AGGREGATORS.register_module()
class FedAvgM(BaseAggregator):
    """FedAvg with server momentum (Hsu et al., 2019).

    ``v <- momentum * v + mean_update``; ``global <- global + server_lr * v``.
    With ``server_lr=1, momentum=0`` it equals :class:`FedAvg`.

    Args:
        server_lr (float): Server learning rate. Defaults to 1.0.
        momentum (float): Server momentum in [0, 1). Defaults to 0.9.
        **kwargs: See :class:`BaseAggregator`.
    """

    def __init__(self,
                 server_lr: float = 1.0,
                 momentum: float = 0.9,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True) -> None:
        super().__init__(include, exclude, weighting, check_finite)
        if server_lr <= 0:
            raise ValueError(f'`server_lr` must be > 0, got {server_lr}.')
        if not 0 <= momentum < 1:
            raise ValueError(f'`momentum` must be in [0, 1), got {momentum}.')
        self.server_lr = server_lr
        self.momentum = momentum
        self._velocity: Dict[str, torch.Tensor] = {}

    def server_step(
            self, mean_delta: Dict[str,
                                   torch.Tensor]) -> Dict[str, torch.Tensor]:
        out = {}
        for k, d in mean_delta.items():
            v = self._velocity.get(k)
            v = d.clone() if v is None else v.mul_(self.momentum).add_(d)
            self._velocity[k] = v
            out[k] = v * self.server_lr
        return out

    def state_dict(self) -> dict:
        return {'velocity': {k: v.cpu() for k, v in self._velocity.items()}}

    def load_state_dict(self, state: dict) -> None:
        self._velocity = dict(state.get('velocity', {}))
