"""Skew partitioner: a mix of an IID part and a label-sorted part."""
import numbers
from typing import Optional

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import encode_keys, group_assignment, group_by_class

__all__ = ['Skew']


def _equal_sizes(total: int, parts: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``parts`` sizes summing to ``total`` that differ by at most one; the
    larger ones go to randomly chosen parts."""
    base, extra = divmod(total, parts)
    sizes = np.full(parts, base, dtype=np.int64)
    sizes[rng.permutation(parts)[:extra]] += 1
    return sizes


@PARTITIONERS.register_module()
class Skew(BasePartitioner):
    """Label skew controlled by the fraction of IID data.

    For every class, a fraction ``ratio`` of its samples (rounded to the
    nearest integer) is put into an *IID pool*, the rest into a *sorted
    pool*. The IID pool is shuffled and dealt into ``K`` equal parts. The
    sorted pool is ordered by label and cut into ``K`` contiguous chunks of
    equal size, given to the clients in random order. Each client receives
    one IID part and one chunk, so client sizes differ by at most two and no
    sample is dropped.

    ``ratio=1`` is an IID split; ``ratio=0`` is fully skewed: with ``C``
    balanced classes a client holds at most ``ceil(C/K) + 1`` labels.

    Args:
        num_clients (int): Number of clients ``K``.
        ratio (float): Fraction of every class spread IID, in ``[0, 1]``.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self, num_clients: int, ratio: float, seed: int = 0):
        super().__init__(num_clients, seed)
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) \
                or not 0.0 <= float(ratio) <= 1.0:
            raise ValueError(f'ratio must be a number in [0, 1], got '
                             f'{ratio!r}')
        self.ratio = float(ratio)

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(num_clients=self.num_clients, ratio=self.ratio)

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        rng = self.make_rng()
        classes, codes = encode_keys(keys)
        order, class_counts = group_by_class(codes, classes.size, rng)
        num_iid = np.floor(self.ratio * class_counts + 0.5).astype(np.int64)
        starts = np.cumsum(class_counts) - class_counts
        rank = np.arange(keys.size) - np.repeat(starts, class_counts)
        to_iid = rank < np.repeat(num_iid, class_counts)
        iid_pool = rng.permutation(order[to_iid])
        sorted_pool = order[~to_iid]
        k = self.num_clients
        assign = np.empty(keys.size, dtype=np.int64)
        assign[iid_pool] = np.repeat(
            np.arange(k), _equal_sizes(iid_pool.size, k, rng))
        assign[sorted_pool] = np.repeat(
            rng.permutation(k), _equal_sizes(sorted_pool.size, k, rng))
        clients, dropped = group_assignment(assign, k)
        return self._make_partition(clients, keys, dropped)
