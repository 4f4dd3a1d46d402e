"""Where a round's client updates wait: memory or disk buffers, the
gathering of rows over ranks and the column-wise median.

Used by :class:`~decssl_mm.federated.aggregators.BufferedAggregator`.
"""
import os
import os.path as osp
import re
import shutil
import tempfile
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank, get_world_size, is_distributed

from ..dist_utils import _comm_device, all_gather_objects
from .int_reduce import floor_midpoint

_BUFFERS = ('memory', 'disk')
#: Directory of the disk buffers inside a run's work dir.
BUFFER_SUBDIR = 'aggregator_buffers'
_BUFFER_PREFIX = 'round_updates_'


def buffer_prefix(rank: int) -> str:
    """Name prefix of the round directories of one rank's disk buffer."""
    return f'{_BUFFER_PREFIX}r{int(rank)}_'


def remove_stale_buffers(root: str, rank: int, world_size: int) -> int:
    """Delete disk buffers left in ``root`` by an earlier (killed) run.

    Each rank removes its own round directories; rank 0 also removes those
    of ranks the current run does not have and unnamed ones.

    Args:
        root (str): Buffer directory.
        rank (int): This process's rank.
        world_size (int): Number of ranks of the run.

    Returns:
        int: Number of directories removed.
    """
    if not osp.isdir(root):
        return 0
    removed = 0
    for name in sorted(os.listdir(root)):
        if not name.startswith(_BUFFER_PREFIX):
            continue
        match = re.match(rf'{_BUFFER_PREFIX}r(\d+)_', name)
        owner = int(match.group(1)) if match else None
        mine = owner == rank
        orphan = rank == 0 and (owner is None or owner >= world_size)
        if mine or orphan:
            path = osp.join(root, name)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed += 1
    return removed



def sorted_median(rows: torch.Tensor) -> torch.Tensor:
    """Median over dim 0; the mean of the two middle values for even counts
    (rounded down for integer rows).

    Args:
        rows (Tensor): ``(m, C)`` values, ``m >= 1``.

    Returns:
        Tensor: ``(C,)`` medians, in the dtype of ``rows``.
    """
    m = rows.shape[0]
    v = rows.sort(dim=0).values
    if m % 2:
        return v[m // 2]
    if not v.is_floating_point():  # no overflow of the pair's sum
        return floor_midpoint(v[m // 2 - 1], v[m // 2])
    return (v[m // 2 - 1] + v[m // 2]) / 2

class UpdateBuffer:
    """The flat float32 updates of this rank's clients in the current round.

    Args:
        kind (str): ``'memory'`` (a list of tensors) or ``'disk'`` (one
            ``.npy`` file per client, read back memory-mapped, chunk by chunk).
        root (str, optional): Directory of the disk buffer (one round
            directory ``round_updates_r<rank>_*`` is made inside it each
            round); None uses the system's temporary directory.
    """

    def __init__(self, kind: str = 'memory', root: Optional[str] = None):
        if kind not in _BUFFERS:
            raise ValueError(f'aggregator.buffer must be one of {_BUFFERS}, '
                             f'got {kind!r}.')
        self.kind = kind
        self.root = root
        self._dir: Optional[str] = None
        self.clients: List[int] = []
        self.weights: List[float] = []
        self._mem: List[torch.Tensor] = []
        self.numel = 0

    def __len__(self) -> int:
        return len(self.clients)

    def clear(self) -> None:
        """Forget (and delete) the updates of the previous round."""
        self.clients, self.weights, self._mem = [], [], []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _path(self, i: int) -> str:
        if self._dir is None:
            if self.root is not None:
                os.makedirs(self.root, exist_ok=True)
            self._dir = tempfile.mkdtemp(prefix=buffer_prefix(get_rank()),
                                         dir=self.root)
        return osp.join(self._dir, f'{i:06d}.npy')

    def add(self, client_id: int, flat: torch.Tensor, weight: float) -> None:
        """Keep one client's flat update.

        Args:
            client_id (int): The client.
            flat (Tensor): 1-D float32 update (on the CPU).
            weight (float): The client's aggregation weight.
        """
        self.numel = flat.numel()
        if self.kind == 'memory':
            self._mem.append(flat)
        else:
            np.save(self._path(len(self.clients)), flat.numpy(),
                    allow_pickle=False)
        self.clients.append(int(client_id))
        self.weights.append(float(weight))

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Coordinates ``[start, stop)`` of every kept update.

        Returns:
            Tensor: ``(len(self), stop - start)`` float32.
        """
        if not self.clients:
            return torch.zeros(0, stop - start, dtype=torch.float32)
        if self.kind == 'memory':
            return torch.stack([t[start:stop] for t in self._mem])
        out = []
        for i in range(len(self.clients)):
            arr = np.load(self._path(i), mmap_mode='r', allow_pickle=False)
            out.append(torch.from_numpy(np.array(arr[start:stop])))
            del arr
        return torch.stack(out)

    def update(self, i: int) -> torch.Tensor:
        """The whole update of the ``i``-th kept client."""
        return self.rows_of(i, 0, self.numel)

    def rows_of(self, i: int, start: int, stop: int) -> torch.Tensor:
        """Coordinates ``[start, stop)`` of the ``i``-th kept client."""
        if self.kind == 'memory':
            return self._mem[i][start:stop]
        arr = np.load(self._path(i), mmap_mode='r', allow_pickle=False)
        return torch.from_numpy(np.array(arr[start:stop]))


def all_gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate (in rank order) the rows every rank holds.

    Ranks may hold different numbers of rows (none, too); every rank gets
    the same result.

    Args:
        rows (Tensor): ``(n_rank, C)`` float32 on the CPU.

    Returns:
        Tensor: ``(sum of n_rank, C)`` on the CPU.
    """
    if not is_distributed() or get_world_size() == 1:
        return rows
    counts = all_gather_objects(int(rows.shape[0]))
    most = max(counts)
    if most == 0:
        return rows[:0]
    dev = _comm_device()
    padded = torch.zeros(most, rows.shape[1], dtype=rows.dtype, device=dev)
    padded[:rows.shape[0]] = rows.to(dev)
    out = [torch.empty_like(padded) for _ in counts]
    torch_dist.all_gather(out, padded)
    return torch.cat([o[:n].cpu() for o, n in zip(out, counts)])
