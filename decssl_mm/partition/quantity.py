"""Quantity-skew partitioner: unequal client sizes, IID labels."""
import numbers
from typing import Optional

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import apportion, check_int, check_positive_float, \
    group_assignment

__all__ = ['Quantity']

_DISTRIBUTIONS = ('power_law', 'dirichlet')


@PARTITIONERS.register_module()
class Quantity(BasePartitioner):
    """Skewed client sizes with an IID label mix on every client.

    Every client first gets ``min_size`` samples; the remaining
    ``N - K * min_size`` samples are apportioned (largest-remainder rounding,
    so sizes sum to ``N`` exactly) by client weights ``w``:

    - ``'power_law'``: ``w_k = rank_k ** -power`` where the ranks
      ``1..K`` are a random permutation over clients (a Zipf profile:
      ``power=0`` gives equal sizes, larger ``power`` more skew);
    - ``'dirichlet'``: ``w ~ Dir(alpha * 1_K)`` (smaller ``alpha``, more
      skew).

    The samples are then shuffled and cut into runs of those sizes, so each
    client's labels follow the global distribution. No sample is dropped.

    Args:
        num_clients (int): Number of clients ``K``.
        distribution (str): ``'power_law'`` or ``'dirichlet'``.
            Defaults to ``'power_law'``.
        power (float): Exponent of ``'power_law'``, >= 0. Defaults to 1.0.
        alpha (float): Concentration of ``'dirichlet'``, > 0.
            Defaults to 0.5.
        min_size (int): Smallest client size, ``K * min_size <= N``.
            Defaults to 1.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self,
                 num_clients: int,
                 distribution: str = 'power_law',
                 power: float = 1.0,
                 alpha: float = 0.5,
                 min_size: int = 1,
                 seed: int = 0):
        super().__init__(num_clients, seed)
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f'distribution must be one of {_DISTRIBUTIONS},'
                             f' got {distribution!r}')
        self.distribution = distribution
        if isinstance(power, bool) or not isinstance(power, numbers.Real) \
                or not np.isfinite(power) or power < 0:
            raise ValueError(f'power must be a finite number >= 0, got '
                             f'{power!r}')
        self.power = float(power)
        self.alpha = check_positive_float(alpha, 'alpha')
        self.min_size = check_int(min_size, 'min_size', minimum=0)

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(
            num_clients=self.num_clients,
            distribution=self.distribution,
            power=self.power,
            alpha=self.alpha,
            min_size=self.min_size)

    def client_weights(self, rng: np.random.Generator) -> np.ndarray:
        """Draw the relative client sizes ``w`` (summing to 1)."""
        k = self.num_clients
        if self.distribution == 'power_law':
            ranks = rng.permutation(k) + 1
            weights = ranks.astype(np.float64)**(-self.power)
        else:
            weights = rng.dirichlet(np.full(k, self.alpha))
            if not weights.sum() > 0:
                weights = np.ones(k)
        return weights / weights.sum()

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        k, num = self.num_clients, keys.size
        if self.min_size * k > num:
            raise ValueError(
                f'min_size={self.min_size} is impossible: {k} clients x '
                f'{self.min_size} > {num} samples')
        rng = self.make_rng()
        sizes = self.min_size + apportion(num - self.min_size * k,
                                          self.client_weights(rng))
        assign = np.empty(num, dtype=np.int64)
        assign[rng.permutation(num)] = np.repeat(np.arange(k), sizes)
        clients, dropped = group_assignment(assign, k)
        return self._make_partition(clients, keys, dropped)
