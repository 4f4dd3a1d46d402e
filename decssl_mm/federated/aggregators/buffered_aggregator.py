"""Aggregators that need every client update of a round at once."""
import os
import os.path as osp
import re
import shutil
import tempfile
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.logging import print_log

from ..dist_utils import _comm_device, all_gather_objects
from .base_aggregator import DEFAULT_LOCAL_PATTERNS, BaseAggregator
from .int_reduce import floor_midpoint, int_result_like

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


class BufferedAggregator(BaseAggregator):
    """Base of aggregators that keep every update of the round.

    :class:`BaseAggregator` folds each client into a running sum; robust
    statistics (median, trimmed mean, norm bounds relative to the round's
    median norm) need all updates of the round first. Each rank keeps its
    own clients' updates (the exchanged floating-point tensors, flattened,
    float32: ``4 * P`` bytes per client for ``P`` exchanged values) in
    memory or on disk. At :meth:`finalize` the statistic is computed
    coordinate chunk by coordinate chunk (``chunk_size`` values); under
    torch.distributed each chunk of every rank's updates is all-gathered, so
    every rank computes the same global result.

    Memory: ``buffer='memory'``: ``4 * P * m_rank`` bytes per rank during the
    round (``m_rank``: clients trained on the rank), e.g. 50 clients of a
    ResNet-18 (11.2 M values): 2.2 GB. ``buffer='disk'``: the same on disk,
    and ``4 * chunk_size * m`` bytes of RAM (times ~3 while sorting) at
    :meth:`finalize` (``m``: clients of the round over all ranks).

    Integer tensors (``num_batches_tracked``) take the median of the
    clients' values (:meth:`reduce_int_rows`; rounded down), not the
    maximum: one client cannot push them arbitrarily far. Export-only
    BatchNorm statistics (see :class:`BaseAggregator`) take the statistic
    of :meth:`reduce_export_rows` (by default the same as the updates').

    Args:
        buffer (str): ``'memory'`` or ``'disk'``. Defaults to ``'memory'``.
        buffer_dir (str, optional): Directory of the disk buffer (a round
            directory is made inside it each round). Defaults to None:
            ``<work_dir>/aggregator_buffers`` once :meth:`setup` is called
            (stale round directories of a killed run are removed there),
            the system's temporary directory before.
        chunk_size (int): Coordinates processed at once in :meth:`finalize`.
            Defaults to ``2**18``.
        **kwargs: See :class:`BaseAggregator`.
    """

    def __init__(self,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True,
                 buffer: str = 'memory',
                 buffer_dir: Optional[str] = None,
                 chunk_size: int = 2**18) -> None:
        super().__init__(include, exclude, weighting, check_finite)
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError('aggregator.chunk_size must be a positive '
                             f'integer, got {chunk_size}.')
        self.chunk_size = int(chunk_size)
        self.buffer_dir = buffer_dir
        self.buffer = UpdateBuffer(buffer, buffer_dir)
        self._layout: List[Tuple[str, int, torch.Size]] = []
        self._int_rows: List[torch.Tensor] = []
        self._export_rows: List[torch.Tensor] = []
        self._export_weights: List[float] = []

    def setup(self, work_dir: str) -> None:
        """Put the disk buffer under ``<work_dir>/aggregator_buffers``.

        Round directories left there by an earlier run of this work dir
        (killed mid-round) are removed. An explicit ``buffer_dir`` is kept
        as it is and not cleaned.

        Args:
            work_dir (str): The run's work directory.
        """
        if self.buffer_dir is not None:
            return
        root = osp.join(work_dir, BUFFER_SUBDIR)
        self.buffer.root = root
        n = remove_stale_buffers(root, get_rank(), get_world_size())
        if n:
            print_log(f'Removed {n} aggregator buffer directories left in '
                      f'{root} by an earlier run.', logger='current')

    # -- layout of the flat update ----------------------------------------
    def begin_round(self, global_state: Dict[str, torch.Tensor]) -> None:
        super().begin_round(global_state)
        self.buffer.clear()
        self._int_rows = []
        self._export_rows = []
        self._export_weights = []
        self._layout, offset = [], 0
        for k in self._float_keys():
            shape = self._global[k].shape
            self._layout.append((k, offset, shape))
            offset += shape.numel()
        self._numel = offset

    def _flatten(self, deltas: Dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([
            deltas[k].reshape(-1).to('cpu', torch.float32)
            for k, _, _ in self._layout
        ]) if self._layout else torch.zeros(0)

    def _unflatten(self, flat: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {
            k: flat[o:o + shape.numel()].view(shape).to(torch.float64)
            for k, o, shape in self._layout
        }

    def _chunks(self) -> Iterator[Tuple[int, int]]:
        for start in range(0, self._numel, self.chunk_size):
            yield start, min(start + self.chunk_size, self._numel)

    def _accumulate(self, client_id: int, deltas: Dict[str, torch.Tensor],
                    weight: float) -> None:
        self.buffer.add(client_id, self._flatten(deltas), weight)

    def _record_ints(self, client_id: int,
                     ints: Dict[str, torch.Tensor]) -> None:
        if ints:
            self._int_rows.append(
                torch.cat([
                    ints[k].reshape(-1).to('cpu', torch.int64)
                    for k in self._int_keys()
                ]))

    def _accumulate_export(self, client_id: int,
                           values: Dict[str, torch.Tensor],
                           weight: float) -> None:
        if values:
            self._export_rows.append(
                torch.cat([
                    values[k].reshape(-1).to('cpu', torch.float64)
                    for k in self._export_ref
                ]))
            self._export_weights.append(float(weight))

    # -- the robust statistic ------------------------------------------------
    def gathered_weights(self) -> List[float]:
        """Weights of every client of the round, all ranks, in rank order."""
        return [w for ws in all_gather_objects(list(self.buffer.weights))
                for w in ws]

    def reduce_chunk(self, rows: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
        """The aggregate of one chunk of coordinates.

        Args:
            rows (Tensor): ``(m, C)`` float64, one row per client of the
                round (all ranks).
            weights (Tensor): ``(m,)`` float64 client weights.

        Returns:
            Tensor: ``(C,)`` float64 aggregated update.
        """
        raise NotImplementedError

    def reduce_int_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The aggregate of the integer tensors: the median, rounded down.

        Args:
            rows (Tensor): ``(m, I)`` int64, one row per client (all ranks).

        Returns:
            Tensor: ``(I,)`` int64.
        """
        return sorted_median(rows)

    def reduce_export_rows(self, rows: torch.Tensor,
                           weights: torch.Tensor) -> torch.Tensor:
        """The aggregate of the export-only statistics (their values).

        Args:
            rows (Tensor): ``(m, E)`` float64 values, one row per client.
            weights (Tensor): ``(m,)`` float64 client weights.

        Returns:
            Tensor: ``(E,)`` float64.
        """
        return self.reduce_chunk(rows, weights)

    def reduce_int_keys(self) -> Dict[str, torch.Tensor]:
        """Gather the clients' integer tensors; :meth:`reduce_int_rows`."""
        keys = self._int_keys()
        if not keys:
            return {}
        width = sum(self._global[k].numel() for k in keys)
        mine = torch.stack(self._int_rows) if self._int_rows else \
            torch.zeros(0, width, dtype=torch.int64)
        rows = torch.cat(all_gather_objects(mine))
        if rows.shape[0] == 0:
            return {k: self._global[k] for k in keys}
        flat = self.reduce_int_rows(rows)
        out, offset = {}, 0
        for k in keys:
            g = self._global[k]
            out[k] = int_result_like(flat[offset:offset + g.numel()], g)
            offset += g.numel()
        return out

    def reduce_export_keys(self) -> Dict[str, torch.Tensor]:
        """Gather the export-only statistics; :meth:`reduce_export_rows`."""
        if not self._export_ref:
            return {}
        width = sum(t.numel() for t in self._export_ref.values())
        mine = torch.stack(self._export_rows) if self._export_rows else \
            torch.zeros(0, width, dtype=torch.float64)
        rows = all_gather_rows(mine)
        weights = torch.tensor(
            [w for ws in all_gather_objects(self._export_weights) for w in ws],
            dtype=torch.float64)
        if rows.shape[0] == 0:
            return {}
        flat = self.reduce_export_rows(rows, weights)
        out, offset = {}, 0
        for k, ref in self._export_ref.items():
            out[k] = flat[offset:offset + ref.numel()].view(ref.shape).to(
                ref.device, ref.dtype)
            offset += ref.numel()
        return out

    def before_reduce(self, num_clients: int) -> None:
        """Hook run once per round before the statistic is computed.

        Args:
            num_clients (int): Clients of the round over all ranks.
        """

    def reduce_mean_delta(self) -> Optional[Dict[str, torch.Tensor]]:
        """Aggregate the kept updates of every rank coordinate-wise.

        Returns:
            dict[str, Tensor] or None: The aggregated float64 update per
            floating key; None when no client of any rank contributed.
        """
        weights = torch.tensor(self.gathered_weights(), dtype=torch.float64)
        if weights.numel() == 0:
            self.buffer.clear()
            return None
        self.before_reduce(int(weights.numel()))
        flat = torch.empty(self._numel, dtype=torch.float64)
        for start, stop in self._chunks():
            rows = all_gather_rows(self.buffer.rows(start, stop))
            flat[start:stop] = self.reduce_chunk(rows.double(), weights)
        self.buffer.clear()
        return self._unflatten(flat)
