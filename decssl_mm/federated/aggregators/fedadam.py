"""FedAdam: an adaptive server optimizer."""
from typing import Dict, Optional, Sequence

import torch

from decssl_mm.registry import AGGREGATORS
from .base_aggregator import DEFAULT_LOCAL_PATTERNS, BaseAggregator


@AGGREGATORS.register_module()
class FedAdam(BaseAggregator):
    """Adam on the server, the mean client update as pseudo-gradient.

    From "Adaptive Federated Optimization" (Reddi et al., 2021):
    ``m <- b1 m + (1-b1) d``; ``v <- b2 v + (1-b2) d^2``;
    ``global <- global + server_lr * m / (sqrt(v) + tau)``.

    Args:
        server_lr (float): Server learning rate. Defaults to 1e-2.
        betas (tuple[float, float]): Adam betas. Defaults to (0.9, 0.99).
        tau (float): Adaptivity (epsilon). Defaults to 1e-3.
        **kwargs: See :class:`BaseAggregator`.
    """

    def __init__(self,
                 server_lr: float = 1e-2,
                 betas: Sequence[float] = (0.9, 0.99),
                 tau: float = 1e-3,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True) -> None:
        super().__init__(include, exclude, weighting, check_finite)
        if server_lr <= 0 or tau <= 0:
            raise ValueError('`server_lr` and `tau` must be > 0.')
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f'`betas` must be two values in [0, 1), got '
                             f'{betas}.')
        self.server_lr = server_lr
        self.betas = tuple(betas)
        self.tau = tau
        self._m: Dict[str, torch.Tensor] = {}
        self._v: Dict[str, torch.Tensor] = {}

    def server_step(
            self, mean_delta: Dict[str,
                                   torch.Tensor]) -> Dict[str, torch.Tensor]:
        b1, b2 = self.betas
        out = {}
        for k, d in mean_delta.items():
            m = self._m.get(k, torch.zeros_like(d)).mul_(b1).add_(
                d, alpha=1 - b1)
            v = self._v.get(k, torch.zeros_like(d)).mul_(b2).addcmul_(
                d, d, value=1 - b2)
            self._m[k], self._v[k] = m, v
            out[k] = self.server_lr * m / (v.sqrt() + self.tau)
        return out

    def state_dict(self) -> dict:
        return {
            'm': {k: t.cpu() for k, t in self._m.items()},
            'v': {k: t.cpu() for k, t in self._v.items()}
        }

    def load_state_dict(self, state: dict) -> None:
        self._m = dict(state.get('m', {}))
        self._v = dict(state.get('v', {}))
