"""Base class of all partitioners."""
from abc import ABCMeta, abstractmethod
from typing import List, Optional

import numpy as np

from .partition import Partition, fingerprint_of
from .utils import as_key_array, check_int

__all__ = ['BasePartitioner']


class BasePartitioner(metaclass=ABCMeta):
    """Split the samples of a dataset among ``num_clients`` clients.

    A partitioner sees one key per sample (a class label, a robot id, a
    dominant COCO category, ...) and possibly a feature vector per sample. The
    keys decide the split only; the self-supervised training never sees them.
    All randomness comes from ``numpy.random.default_rng(seed)``, so the same
    keys, parameters and seed always give the same :class:`Partition`.

    Subclasses implement :meth:`partition` and list their constructor
    arguments (except ``seed``) in :meth:`params`; the result's ``recipe`` is
    ``dict(type=<registered name>, params=self.params(), seed=self.seed)``,
    which is exactly the config that rebuilds it.

    Args:
        num_clients (int): Number of clients, >= 1.
        seed (int): Seed of the random generator. Defaults to 0.
    """

    def __init__(self, num_clients: int, seed: int = 0):
        self.num_clients = check_int(num_clients, 'num_clients', minimum=1)
        self.seed = check_int(seed, 'seed', minimum=0)

    def params(self) -> dict:
        """Constructor arguments (without ``seed``) that rebuild this object.

        Returns:
            dict: JSON-serializable parameters.
        """
        return dict(num_clients=self.num_clients)

    @property
    def recipe(self) -> dict:
        """dict: ``dict(type=..., params=..., seed=...)`` of this object."""
        return dict(
            type=type(self).__name__, params=self.params(), seed=self.seed)

    def make_rng(self) -> np.random.Generator:
        """A fresh generator seeded with ``seed``."""
        return np.random.default_rng(self.seed)

    @abstractmethod
    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """Split the samples.

        Args:
            labels (np.ndarray): 1-D array with one key per sample.
            features (np.ndarray, optional): ``(N, D)`` feature vectors, used
                by feature-based partitioners only. Defaults to None.

        Returns:
            Partition: The client index arrays with recipe and fingerprint.
        """

    def __call__(self,
                 labels: np.ndarray,
                 features: Optional[np.ndarray] = None) -> Partition:
        return self.partition(labels, features)

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.params().items())
        return f'{type(self).__name__}({args}, seed={self.seed})'

    # ---------------------------------------------------------- helpers
    def _check_labels(self,
                      labels,
                      num_clients: Optional[int] = None) -> np.ndarray:
        """Validate the key array and that it has enough samples.

        Args:
            labels (array-like): One key per sample.
            num_clients (int, optional): Client count to check against;
                defaults to ``self.num_clients``.

        Returns:
            np.ndarray: The keys as a 1-D array.
        """
        keys = as_key_array(labels, name='labels')
        num_clients = self.num_clients if num_clients is None else num_clients
        if num_clients > keys.size:
            raise ValueError(f'num_clients={num_clients} exceeds the number '
                             f'of samples ({keys.size}): every client needs '
                             'at least one sample')
        return keys

    def _make_partition(self,
                        client_indices: List[np.ndarray],
                        keys: np.ndarray,
                        dropped: int = 0) -> Partition:
        """Wrap client index arrays into a :class:`Partition`."""
        return Partition(
            client_indices,
            num_samples=keys.size,
            recipe=self.recipe,
            fingerprint=fingerprint_of(keys),
            dropped=dropped)
