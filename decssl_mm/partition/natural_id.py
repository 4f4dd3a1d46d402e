"""Natural-id partitioner: one client per distinct key (robot, site, ...)."""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import as_key_array, encode_keys, group_assignment

__all__ = ['NaturalId']

_GROUPS = (None, 'contiguous', 'random', 'balanced')


@PARTITIONERS.register_module()
class NaturalId(BasePartitioner):
    """Use a natural per-sample id as the client: one client per id value.

    The keys are ids such as the robot or warehouse that recorded a sample,
    or the dominant category of a COCO image; they may be ints or strings.
    Distinct ids are sorted (numerically or lexicographically) and, without
    grouping, client ``k`` holds every sample of the ``k``-th id.

    With ``num_clients`` smaller than the number of distinct ids, ``group``
    says how several ids share a client:

    - ``'contiguous'``: consecutive ids in sorted order, in ``num_clients``
      runs whose numbers of ids differ by at most one;
    - ``'random'``: the same after a seeded shuffle of the ids;
    - ``'balanced'``: ids taken largest first, each to the client with the
      fewest samples so far (ties to the lowest client id), which evens
      out sample counts.

    Samples whose id is listed in ``ignore_keys`` (e.g. ``-1`` for COCO
    images without annotations) belong to no client and are counted in
    :attr:`Partition.dropped`.

    Args:
        num_clients (int, optional): Number of clients. None (default) means
            one client per distinct id. Must not exceed the number of
            distinct (non-ignored) ids.
        group (str, optional): ``None``, ``'contiguous'``, ``'random'`` or
            ``'balanced'``; required when ``num_clients`` is smaller than
            the number of ids. Defaults to None.
        ignore_keys (Sequence, optional): Ids whose samples are dropped.
            Defaults to None.
        seed (int): Random seed (used by ``group='random'``). Defaults to 0.
    """

    def __init__(self,
                 num_clients: Optional[int] = None,
                 group: Optional[str] = None,
                 ignore_keys: Optional[Sequence] = None,
                 seed: int = 0):
        super().__init__(1 if num_clients is None else num_clients, seed)
        self.num_clients = None if num_clients is None else self.num_clients
        if group not in _GROUPS:
            raise ValueError(f'group must be one of {_GROUPS}, got {group!r}')
        self.group = group
        if ignore_keys is not None and (isinstance(ignore_keys, (str, bytes))
                                        or not hasattr(ignore_keys,
                                                       '__iter__')):
            raise ValueError('ignore_keys must be a list of ids, got '
                             f'{ignore_keys!r}')
        self.ignore_keys = (None if ignore_keys is None else
                            [_plain(k) for k in ignore_keys])

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(
            num_clients=self.num_clients,
            group=self.group,
            ignore_keys=self.ignore_keys)

    def groups(self, labels) -> List[list]:
        """The ids held by every client.

        Args:
            labels (array-like): One id per sample.

        Returns:
            list[list]: ``groups[k]`` lists the ids of client ``k``, sorted.
        """
        keys = as_key_array(labels, name='labels')
        classes, codes = encode_keys(keys)
        owner, num_clients = self._id_owner(classes, codes)
        return [
            [_plain(c) for c in classes[owner == k]]
            for k in range(num_clients)
        ]

    def _ignored(self, classes: np.ndarray) -> np.ndarray:
        """Mask of the distinct ids listed in ``ignore_keys``."""
        if not self.ignore_keys:
            return np.zeros(classes.size, dtype=bool)
        ignore = np.asarray(self.ignore_keys)
        if classes.dtype.kind == 'U' or ignore.dtype.kind == 'U':
            return np.isin(classes.astype(str), ignore.astype(str))
        return np.isin(classes, ignore)

    def _id_owner(self, classes: np.ndarray,
                  codes: np.ndarray) -> Tuple[np.ndarray, int]:
        """Client of every distinct id (-1 for ignored ids) and the number
        of clients."""
        owner = np.full(classes.size, -1, dtype=np.int64)
        kept = np.flatnonzero(~self._ignored(classes))
        num_ids = kept.size
        if num_ids == 0:
            raise ValueError('labels holds no id outside ignore_keys='
                             f'{self.ignore_keys}')
        num_clients = num_ids if self.num_clients is None else \
            self.num_clients
        if num_clients > num_ids:
            raise ValueError(f'num_clients={num_clients} exceeds the number '
                             f'of distinct ids ({num_ids})')
        if num_clients == num_ids and self.group is None:
            owner[kept] = np.arange(num_ids)
            return owner, num_clients
        if self.group is None:
            raise ValueError(
                f'num_clients={num_clients} is smaller than the number of '
                f'distinct ids ({num_ids}): set group to one of '
                f"'contiguous', 'random', 'balanced'")
        if self.group == 'balanced':
            counts = np.bincount(codes, minlength=classes.size)[kept]
            owner[kept] = _largest_first(counts, num_clients)
            return owner, num_clients
        if self.group == 'random':
            kept = self.make_rng().permutation(kept)
        base, extra = divmod(num_ids, num_clients)
        sizes = np.full(num_clients, base, dtype=np.int64)
        sizes[:extra] += 1
        owner[kept] = np.repeat(np.arange(num_clients), sizes)
        return owner, num_clients

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels, num_clients=1)
        classes, codes = encode_keys(keys)
        owner, num_clients = self._id_owner(classes, codes)
        clients, dropped = group_assignment(owner[codes], num_clients)
        return self._make_partition(clients, keys, dropped)


def _largest_first(counts: np.ndarray, num_clients: int) -> np.ndarray:
    """Greedy LPT: ids by decreasing count, each to the lightest client."""
    owner = np.empty(counts.size, dtype=np.int64)
    load = np.zeros(num_clients, dtype=np.int64)
    for i in np.argsort(-counts, kind='stable'):
        k = int(np.argmin(load))
        owner[i] = k
        load[k] += counts[i]
    return owner


def _plain(value):
    """numpy scalar -> Python scalar (JSON friendly)."""
    return value.item() if isinstance(value, np.generic) else value
