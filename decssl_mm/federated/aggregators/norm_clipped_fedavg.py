"""FedAvg with per-client update-norm clipping."""
from typing import Dict, List, Optional, Sequence

import torch

from decssl_mm.registry import AGGREGATORS
from ..dist_utils import all_gather_objects
from .base_aggregator import DEFAULT_LOCAL_PATTERNS, BaseAggregator
from .buffered_aggregator import BufferedAggregator


@AGGREGATORS.register_module()
class NormClippedFedAvg(BufferedAggregator):
    """FedAvg after bounding each client's update norm.

    The L2 norm of every client's update (its exchanged floating tensors
    minus the global ones, all together) is computed; the bound of the round
    is ``clip_factor`` times the median norm of the round's clients (all
    ranks). An update longer than the bound is scaled down to it; then the
    updates are averaged as by :class:`FedAvg` (``weighting``). A client
    sending a huge (e.g. scaled x1000) update thus weighs no more than a
    client with ``clip_factor`` times the typical norm. Clipping bounds the
    *size* of a malicious update, not its direction: a sign-flipped update of
    ordinary norm passes; use :class:`CoordinateMedian` or
    :class:`TrimmedMean` against that. ``max_norm`` adds a fixed bound.

    Only norms and small tensors (integer tensors, export-only statistics)
    cross ranks by all-gather: each rank scales its own clients' updates
    and the sums are all-reduced as in FedAvg. The
    updates of the round are kept until the bound is known: see
    :class:`BufferedAggregator` for the memory cost and the buffer arguments
    (and for integer tensors: the median of the clients' values).
    Export-only BatchNorm statistics take the weighted mean, not clipped.

    Args:
        clip_factor (float): Bound relative to the round's median norm,
            > 0. Defaults to 2.0.
        max_norm (float, optional): Absolute bound as well (the smaller
            wins). Defaults to None.
        **kwargs: See :class:`BufferedAggregator`.
    """

    def __init__(self,
                 clip_factor: float = 2.0,
                 max_norm: Optional[float] = None,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True,
                 buffer: str = 'memory',
                 buffer_dir: Optional[str] = None,
                 chunk_size: int = 2**18) -> None:
        super().__init__(include, exclude, weighting, check_finite, buffer,
                         buffer_dir, chunk_size)
        if not clip_factor > 0:
            raise ValueError('aggregator.clip_factor must be > 0, got '
                             f'{clip_factor}.')
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f'aggregator.max_norm must be > 0, got '
                             f'{max_norm}.')
        self.clip_factor = float(clip_factor)
        self.max_norm = max_norm
        self._norms: List[float] = []
        #: Bound and number of clipped clients of the last round (logging).
        self.last_bound: Optional[float] = None
        self.last_num_clipped = 0

    def begin_round(self, global_state: Dict[str, torch.Tensor]) -> None:
        super().begin_round(global_state)
        self._norms = []

    def _accumulate(self, client_id: int, deltas: Dict[str, torch.Tensor],
                    weight: float) -> None:
        norm = torch.sqrt(
            sum(((d * d).sum() for d in deltas.values()),
                torch.zeros((), dtype=torch.float64)))
        # the buffer write can fail (disk): the norm joins only after it
        super()._accumulate(client_id, deltas, weight)
        self._norms.append(float(norm))

    def reduce_export_rows(self, rows: torch.Tensor,
                           weights: torch.Tensor) -> torch.Tensor:
        """Export-only statistics: their weighted mean, as in FedAvg."""
        return (rows * weights[:, None]).sum(0) / weights.sum()

    def clip_bound(self, norms: List[float]) -> float:
        """The round's bound from the norms of all its clients."""
        median = float(torch.tensor(norms, dtype=torch.float64).median())
        bound = self.clip_factor * median
        if self.max_norm is not None:
            bound = min(bound, float(self.max_norm))
        return bound

    def reduce_mean_delta(self) -> Optional[Dict[str, torch.Tensor]]:
        norms = [n for ns in all_gather_objects(list(self._norms)) for n in ns]
        if not norms:
            self.buffer.clear()
            return BaseAggregator.reduce_mean_delta(self)
        bound = self.clip_bound(norms)
        self.last_bound = bound
        self.last_num_clipped = sum(n > bound for n in norms)
        for i, (norm, w) in enumerate(zip(self._norms, self.buffer.weights)):
            scale = min(1.0, bound / norm) if norm > 0 else 1.0
            flat = self.buffer.update(i).double() * scale
            BaseAggregator._accumulate(self, self.buffer.clients[i],
                                       self._unflatten(flat), w)
        self.buffer.clear()
        return BaseAggregator.reduce_mean_delta(self)
