"""Shard partitioner: label-sorted shards dealt to clients."""
from typing import Optional

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import check_int, encode_keys, group_assignment, group_by_class

__all__ = ['Shards']


@PARTITIONERS.register_module()
class Shards(BasePartitioner):
    """Sort by label, cut into equal shards, give each client some shards.

    The samples are ordered by label (random order inside a label), cut into
    ``num_clients * shards_per_client`` contiguous shards whose sizes differ
    by at most one, and every client receives ``shards_per_client`` shards
    chosen at random. A client therefore sees roughly
    ``shards_per_client`` labels (one more when a shard straddles a label
    boundary). No sample is dropped.

    Args:
        num_clients (int): Number of clients ``K``.
        shards_per_client (int): Shards per client, >= 1;
            ``K * shards_per_client`` must not exceed the number of samples.
            Defaults to 2.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self,
                 num_clients: int,
                 shards_per_client: int = 2,
                 seed: int = 0):
        super().__init__(num_clients, seed)
        self.shards_per_client = check_int(
            shards_per_client, 'shards_per_client', minimum=1)

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(
            num_clients=self.num_clients,
            shards_per_client=self.shards_per_client)

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        num_shards = self.num_clients * self.shards_per_client
        if num_shards > keys.size:
            raise ValueError(
                f'shards_per_client={self.shards_per_client} is too large: '
                f'{self.num_clients} clients x {self.shards_per_client} '
                f'shards > {keys.size} samples')
        rng = self.make_rng()
        classes, codes = encode_keys(keys)
        order, _ = group_by_class(codes, classes.size, rng)
        base, extra = divmod(keys.size, num_shards)
        shard_sizes = np.full(num_shards, base, dtype=np.int64)
        shard_sizes[:extra] += 1
        shard_owner = rng.permutation(num_shards) // self.shards_per_client
        assign = np.empty(keys.size, dtype=np.int64)
        assign[order] = np.repeat(shard_owner, shard_sizes)
        clients, dropped = group_assignment(assign, self.num_clients)
        return self._make_partition(clients, keys, dropped)
