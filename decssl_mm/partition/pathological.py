"""Pathological partitioner: every client holds a fixed number of labels."""
from typing import Optional

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import check_int, encode_keys, group_assignment, group_by_class

__all__ = ['Pathological']


@PARTITIONERS.register_module()
class Pathological(BasePartitioner):
    """Every client holds exactly ``classes_per_client`` distinct labels.

    Labels are dealt round-robin over a random label order: the ``m`` label
    slots of client ``k`` are positions ``k*m .. k*m+m-1`` (mod ``C``) of
    that order, assigned to a random client permutation. Hence a client's
    labels are distinct, and every label is held by ``floor(K*m/C)`` or
    ``ceil(K*m/C)`` clients. The samples of a label are shuffled and split
    into equal parts (sizes differ by at most one) among its holders.

    When ``K * m < C`` some labels are held by no client; their samples are
    dropped and counted in :attr:`Partition.dropped`. A client can end up
    empty only if a label has fewer samples than holders.

    Args:
        num_clients (int): Number of clients ``K``.
        classes_per_client (int): Labels per client ``m``,
            ``1 <= m <= C``. Defaults to 2.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self,
                 num_clients: int,
                 classes_per_client: int = 2,
                 seed: int = 0):
        super().__init__(num_clients, seed)
        self.classes_per_client = check_int(
            classes_per_client, 'classes_per_client', minimum=1)

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(
            num_clients=self.num_clients,
            classes_per_client=self.classes_per_client)

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        classes, codes = encode_keys(keys)
        num_classes, per = classes.size, self.classes_per_client
        if per > num_classes:
            raise ValueError(
                f'classes_per_client={per} exceeds the number of distinct '
                f'labels ({num_classes})')
        rng = self.make_rng()
        order, class_counts = group_by_class(codes, num_classes, rng)
        label_order = rng.permutation(num_classes)
        client_order = rng.permutation(self.num_clients)
        slots = np.arange(self.num_clients * per)
        slot_class = label_order[slots % num_classes]
        slot_client = client_order[slots // per]
        # Holders of every class, grouped by class.
        by_class = np.argsort(slot_class, kind='stable')
        holders = slot_client[by_class]
        num_holders = np.bincount(slot_class, minlength=num_classes)
        # Equal split of class c among its holders: part j gets
        # n_c // h + (j < n_c % h) samples.
        base = np.repeat(class_counts // np.maximum(num_holders, 1),
                         num_holders)
        rest = np.repeat(class_counts % np.maximum(num_holders, 1),
                         num_holders)
        first = np.repeat(np.cumsum(num_holders) - num_holders, num_holders)
        rank = np.arange(holders.size) - first
        part_sizes = base + (rank < rest)
        dropped_sizes = np.where(num_holders == 0, class_counts, 0)
        # Interleave per class: holders' parts, then the dropped remainder.
        owners = np.concatenate([holders, np.full(num_classes, -1)])
        sizes = np.concatenate([part_sizes, dropped_sizes])
        cls_of = np.concatenate([slot_class[by_class], np.arange(num_classes)])
        seq = np.argsort(cls_of, kind='stable')
        assign = np.empty(keys.size, dtype=np.int64)
        assign[order] = np.repeat(owners[seq], sizes[seq])
        clients, dropped = group_assignment(assign, self.num_clients)
        return self._make_partition(clients, keys, dropped)
