"""IID partitioner: a uniformly random split into equal parts."""
from typing import Optional

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import group_assignment

__all__ = ['IID']


@PARTITIONERS.register_module()
class IID(BasePartitioner):
    """Shuffle all samples and deal them into equal parts.

    Client sizes differ by at most one: with ``N = q * K + r`` samples, ``r``
    randomly chosen clients hold ``q + 1`` samples and the others ``q``. The
    keys are ignored except for their count and fingerprint.

    Args:
        num_clients (int): Number of clients, ``1 <= num_clients <= N``.
        seed (int): Random seed. Defaults to 0.

    Example:
        >>> part = IID(num_clients=3, seed=0)(np.zeros(10, dtype=int))
        >>> sorted(part.client_sizes.tolist())
        [3, 3, 4]
    """

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        rng = self.make_rng()
        num = keys.size
        base, extra = divmod(num, self.num_clients)
        sizes = np.full(self.num_clients, base, dtype=np.int64)
        sizes[rng.permutation(self.num_clients)[:extra]] += 1
        assign = np.empty(num, dtype=np.int64)
        assign[rng.permutation(num)] = np.repeat(
            np.arange(self.num_clients), sizes)
        clients, dropped = group_assignment(assign, self.num_clients)
        return self._make_partition(clients, keys, dropped)
