"""Coordinate-wise median of the clients' updates."""
import torch

from decssl_mm.registry import AGGREGATORS
from .buffered_aggregator import BufferedAggregator, sorted_median


@AGGREGATORS.register_module()
class CoordinateMedian(BufferedAggregator):
    """Every coordinate of the global update is the median of the clients'.

    From "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
    Rates" (Yin et al., 2018). As long as fewer than half of a round's
    clients are malicious, each coordinate of the result lies within the
    range of the honest clients' values, whatever the others send (scaled,
    sign-flipped or arbitrary updates). Clients count equally: sample
    counts are reported by the clients themselves and are not used
    (``weighting`` is ignored). Integer tensors (``num_batches_tracked``)
    take the median too (rounded down), as do export-only BatchNorm
    statistics. With two clients the median is their mean: it protects
    nothing; three clients are the fewest that outvote one.

    Keeps every update of the round: see :class:`BufferedAggregator` for the
    memory cost and the ``buffer``/``buffer_dir``/``chunk_size`` arguments.
    """

    def reduce_chunk(self, rows: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
        return sorted_median(rows)
