"""Coordinate-wise trimmed mean of the clients' updates."""
import math
from typing import Optional, Sequence

import torch

from decssl_mm.registry import AGGREGATORS
from .base_aggregator import DEFAULT_LOCAL_PATTERNS
from .buffered_aggregator import BufferedAggregator


@AGGREGATORS.register_module()
class TrimmedMean(BufferedAggregator):
    """Per coordinate, drop the largest and smallest values, average the rest.

    From "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
    Rates" (Yin et al., 2018). With ``m`` clients in the round,
    ``t = floor(trim_ratio * m)`` values are dropped at each end of every
    coordinate and the remaining ``m - 2t`` are averaged (uniformly: client
    sample counts are self-reported and not used; ``weighting`` is ignored).
    Up to ``t`` malicious clients cannot move a coordinate outside the range
    of the honest values. With ``t = 0`` (few clients) it is the plain mean.

    Keeps every update of the round: see :class:`BufferedAggregator` for the
    memory cost and the ``buffer``/``buffer_dir``/``chunk_size`` arguments.

    Args:
        trim_ratio (float): Fraction dropped at *each* end, in [0, 0.5).
            Defaults to 0.2.
        **kwargs: See :class:`BufferedAggregator`.
    """

    def __init__(self,
                 trim_ratio: float = 0.2,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True,
                 buffer: str = 'memory',
                 buffer_dir: Optional[str] = None,
                 chunk_size: int = 2**18) -> None:
        super().__init__(include, exclude, weighting, check_finite, buffer,
                         buffer_dir, chunk_size)
        if not 0 <= trim_ratio < 0.5:
            raise ValueError('aggregator.trim_ratio must be in [0, 0.5), got '
                             f'{trim_ratio}.')
        self.trim_ratio = float(trim_ratio)

    def num_trimmed(self, m: int) -> int:
        """Values dropped at each end of a coordinate with ``m`` clients."""
        return int(math.floor(self.trim_ratio * m + 1e-9))

    def reduce_chunk(self, rows: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
        m = rows.shape[0]
        t = self.num_trimmed(m)
        v = rows.sort(dim=0).values
        return v[t:m - t].mean(dim=0)
