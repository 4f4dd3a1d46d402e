"""Client-local state between a client's rounds, kept on disk."""
import logging
import os
import os.path as osp
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.logging import print_log

from decssl_mm.registry import CLIENT_STATE_STORES
from decssl_mm.utils.checksums import drop_checksum
from decssl_mm.utils.io import atomic_torch_save, safe_torch_load
from .state_recovery import warn_unreadable_state

_FILE_RE = re.compile(r'^client_(\d+)\.r(\d+)\.pth$')


@CLIENT_STATE_STORES.register_module()
class DiskClientStateStore:
    """Keep each client's local state in one file per version on disk.

    What a client keeps between its rounds (MoCo's queue, BatchNorm under
    FedBN, its optimizer state when kept, FeatARC's features) is written to
    ``<work_dir>/<subdir>/client_<k>.r<round>.pth`` (atomically) and read back
    when the client is next sampled, so RAM does not grow with the number of
    clients. Files hold plain tensors and Python scalars and are read with
    ``torch.load(weights_only=True)``.

    Versions make resume exact: the index ``client -> round of its latest
    state`` is saved in each checkpoint (:meth:`state_dict`); a version stays
    on disk while ANY checkpoint still on disk refers to it (the loop tells
    :meth:`prune` which checkpoints exist; when ``max_keep_ckpts`` removes a
    checkpoint, the versions only it referred to go at the next round). So a
    run killed mid-round resumes from states consistent with its checkpoint,
    and resuming from an older kept checkpoint leaves the files of the newer
    ones in place until the resumed run overwrites them.

    Under torch.distributed only rank 0 deletes files: checkpoints (and so
    :meth:`commit`) happen on rank 0 alone, and another rank cannot tell the
    version the last checkpoint refers to from a merely older one. A rank
    that writes a newer version leaves the older one to rank 0, which removes
    it when the round's index is merged.

    A client whose state holds nothing (no tensor, no value other than
    None: SimCLR, BYOL or BarlowTwins under plain FedAvg with
    ``optimizer_policy='reset'``) and that has no earlier version gets no
    file (``skip_empty``): reading it back would change nothing, and the
    write (with its fsync) would be per-client cost that is not training.

    With ``write_behind`` a client's file is written by a background
    thread while the next client trains (at most one write in flight, so
    memory stays flat); the version enters the index only once written, and
    :meth:`flush` (the loop calls it at the end of each round) waits for
    the last write and reports failed ones: such a client's update is
    aggregated and it keeps its previous state, as when a synchronous write
    fails. The state handed to :meth:`save` must not change afterwards (the
    trainers hand over copies).

    Args:
        subdir (str): Directory under ``work_dir``. Defaults to
            ``'client_states'``.
        skip_empty (bool): Write no file for a state that holds nothing
            when the client has no earlier version. Defaults to True.
        write_behind (bool): Write in a background thread, overlapping the
            next client's training. Defaults to False.
    """

    def __init__(self, subdir: str = 'client_states',
                 skip_empty: bool = True,
                 write_behind: bool = False) -> None:
        self.subdir = subdir
        self.skip_empty = bool(skip_empty)
        self.write_behind = bool(write_behind)
        self._writer: Optional[ThreadPoolExecutor] = None
        #: ``(client, round, future)`` of the write in flight
        self._pending: Optional[Tuple[int, int, Future]] = None
        self._write_errors: Dict[int, str] = {}
        self.root: Optional[str] = None
        self.index: Dict[int, int] = {}
        #: checkpoint round -> the index that checkpoint refers to
        self.refs: Dict[int, Dict[int, int]] = {}
        #: versions on disk this store manages
        self.known: Set[Tuple[int, int]] = set()
        self._warned: set = set()

    def setup(self, work_dir: str) -> None:
        """Create the directory under ``work_dir``."""
        self.root = osp.join(work_dir, self.subdir)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, client_id: int, round_idx: int) -> str:
        assert self.root is not None, 'call setup(work_dir) first'
        return osp.join(self.root,
                        f'client_{client_id:06d}.r{round_idx:06d}.pth')

    def load(self, client_id: int) -> Optional[Dict[str, Any]]:
        """Read a client's latest state, or None if it has none.

        A file that cannot be loaded for any reason (missing, truncated,
        checksum mismatch, holding code) does not exclude the client: the
        reason is logged at WARNING (once per file) and the client restarts
        from the server's model with fresh local state. Code in a file is
        never executed (the load is weights-only).
        """
        client_id = int(client_id)
        if self._pending is not None and self._pending[0] == client_id:
            self._settle()
        r = self.index.get(client_id)
        if r is None:
            return None
        path = self._path(client_id, r)
        try:
            return safe_torch_load(path)
        except (OSError, ValueError) as e:  # code in it: never executed
            warn_unreadable_state(client_id, path, e, self._warned)
            return None

    def needs_save(self, client_id: int, state: Dict[str, Any]) -> bool:
        """Whether :meth:`save` must write ``state`` of ``client_id``.

        False only under ``skip_empty`` for a state that holds nothing
        (:func:`holds_nothing`) of a client without an earlier version;
        a client with one always gets its new version written, so the
        index keeps following the rounds.
        """
        return not (self.skip_empty and int(client_id) not in self.index
                    and holds_nothing(state))

    def save(self, client_id: int, state: Dict[str, Any],
             round_idx: int) -> None:
        """Write a new version of a client's state.

        Args:
            client_id (int): The client.
            state (dict): Plain tensors / scalars / dicts of them.
            round_idx (int): The round that produced it.
        """
        client_id = int(client_id)
        if not self.write_behind:
            atomic_torch_save(state, self._path(client_id, round_idx))
            self.merge_index({client_id: round_idx})
            return
        self._settle()  # one write in flight at most
        if self._writer is None:
            self._writer = ThreadPoolExecutor(
                1, thread_name_prefix='client-state')
        future = self._writer.submit(atomic_torch_save, state,
                                     self._path(client_id, round_idx))
        self._pending = (client_id, int(round_idx), future)

    def _settle(self) -> None:
        """Wait for the write in flight; adopt its version or keep its
        error for :meth:`flush`."""
        if self._pending is None:
            return
        client_id, round_idx, future = self._pending
        self._pending = None
        try:
            future.result()
        except Exception as e:  # noqa: B902 - reported by flush()
            self._write_errors[client_id] = f'{type(e).__name__}: {e}'
            self._remove(self._path(client_id, round_idx))
            return
        self.merge_index({client_id: round_idx})

    def flush(self) -> Dict[int, str]:
        """Finish the write in flight (``write_behind``).

        Returns:
            dict[int, str]: ``client -> error`` of the writes that failed
            since the last call; those clients keep their previous version.
        """
        self._settle()
        errors, self._write_errors = self._write_errors, {}
        return errors

    def merge_index(self, updates: Dict[int, int]) -> None:
        """Adopt new versions (this rank's or other ranks' of this round).

        On rank 0 a superseded version is deleted at once unless a
        checkpoint refers to it.
        """
        for k, r in updates.items():
            k, r = int(k), int(r)
            prev = self.index.get(k)
            self.index[k] = r
            self.known.add((k, r))
            if is_main_process() and prev is not None and prev != r and \
                    (k, prev) not in self.needed():
                self._remove(self._path(k, prev))
                self.known.discard((k, prev))

    # ----------------------------------------------------- checkpoint refs
    @property
    def committed(self) -> Dict[int, int]:
        """The index of the newest checkpoint (empty before the first)."""
        return self.refs[max(self.refs)] if self.refs else {}

    def needed(self) -> Set[Tuple[int, int]]:
        """Versions the current index or a kept checkpoint refers to."""
        out = set(self.index.items())
        for idx in self.refs.values():
            out.update(idx.items())
        return out

    def commit(self, round_idx: Optional[int] = None) -> None:
        """Record that the checkpoint of ``round_idx`` refers to the index.

        Its versions stay on disk while that checkpoint file exists.

        Args:
            round_idx (int, optional): Rounds completed at the checkpoint.
                Defaults to one after the newest recorded checkpoint.
        """
        if round_idx is None:
            round_idx = max(self.refs) + 1 if self.refs else 0
        self.refs[int(round_idx)] = dict(self.index)

    def adopt_checkpoint(self, round_idx: int, index: Dict[int, int]) -> None:
        """Keep the versions another checkpoint on disk refers to."""
        index = {int(k): int(r) for k, r in index.items()}
        self.refs[int(round_idx)] = index
        self.known.update(index.items())

    def prune(self, alive: Optional[Callable[[int], bool]] = None) -> None:
        """Delete versions that no kept checkpoint refers to.

        Args:
            alive (callable, optional): ``alive(round)`` tells whether the
                checkpoint of that round still exists. Without it only the
                newest checkpoint is assumed to exist.
        """
        if self.refs:
            newest = max(self.refs)
            self.refs = {
                r: idx for r, idx in self.refs.items()
                if (alive(r) if alive is not None else r == newest)
            }
        needed = self.needed()
        for k, r in sorted(self.known - needed):
            self._remove(self._path(k, r))
        self.known &= needed

    def remove_orphans(self) -> List[str]:
        """Delete files no kept checkpoint and not the index refers to.

        Used when a run starts: files of an interrupted round, of a run
        killed before its first checkpoint, and temporary files.

        Returns:
            list[str]: Names of the removed files.
        """
        if self.root is None or not osp.isdir(self.root):
            return []
        needed = self.needed()
        removed = []
        for name in sorted(os.listdir(self.root)):
            m = _FILE_RE.match(name)
            if m is None and not name.endswith('.tmp'):
                continue
            if m is not None and (int(m.group(1)), int(m.group(2))) in needed:
                continue
            self._remove(osp.join(self.root, name))
            removed.append(name)
        self.known = set(needed)
        return removed

    def remove_stale(self, resumed: bool) -> int:
        """Delete the files a starting run cannot use; log them at WARNING.

        On resume: versions no kept checkpoint refers to (the interrupted
        round); versions that newer checkpoints on disk refer to stay. On a
        fresh start: every file (e.g. of a run killed before its first
        checkpoint).

        Args:
            resumed (bool): Whether the run resumes from a checkpoint.

        Returns:
            int: Number of files removed.
        """
        removed = self.remove_orphans()
        if removed:
            what = 'that no kept checkpoint refers to' if resumed else \
                'left in the work dir by an earlier run'
            print_log(f'Removed {len(removed)} client-state files {what}: '
                      f'{removed[:5]}' + (' ...' if len(removed) > 5 else ''),
                      logger='current', level=logging.WARNING)
        return len(removed)

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        drop_checksum(path)

    def num_files(self) -> int:
        """Number of state files on disk (for monitoring)."""
        if self.root is None or not osp.isdir(self.root):
            return 0
        return sum(1 for n in os.listdir(self.root) if _FILE_RE.match(n))

    def state_dict(self) -> dict:
        """The index, as plain tensors (safe to load)."""
        keys = sorted(self.index)
        return {
            'clients': torch.tensor(keys, dtype=torch.int64),
            'rounds': torch.tensor([self.index[k] for k in keys],
                                   dtype=torch.int64)
        }

    def load_state_dict(self, state: dict,
                        round_idx: Optional[int] = None) -> None:
        """Restore the index of the checkpoint resumed from.

        Args:
            state (dict): :meth:`state_dict` of the checkpoint.
            round_idx (int, optional): Rounds completed at that checkpoint.
        """
        clients = state['clients'].tolist()
        rounds = state['rounds'].tolist()
        self.index = {int(k): int(r) for k, r in zip(clients, rounds)}
        self.known.update(self.index.items())
        self.refs[int(round_idx) if round_idx is not None else
                  (max(self.refs) + 1 if self.refs else 0)] = dict(self.index)


def holds_nothing(state: Any) -> bool:
    """Whether a client state (dicts, lists and tuples of tensors and
    scalars) has no tensor and no value other than None, e.g.
    ``{'local': {}}`` or ``{'x': {'y': None}}``."""
    if isinstance(state, dict):
        return all(holds_nothing(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(holds_nothing(v) for v in state)
    return state is None
