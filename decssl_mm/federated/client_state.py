"""Client-local state between a client's rounds, kept on disk."""
import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import is_main_process

from decssl_mm.registry import CLIENT_STATE_STORES
from decssl_mm.utils.io import atomic_torch_save, safe_torch_load

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
    on disk while the last written checkpoint refers to it, so a run killed
    mid-round resumes from states consistent with its checkpoint. At most two
    versions per client exist (the committed one and a newer one), and
    versions that no checkpoint can refer to any more are deleted.

    Under torch.distributed only rank 0 deletes files: checkpoints (and so
    :meth:`commit`) happen on rank 0 alone, and another rank cannot tell the
    version the last checkpoint refers to from a merely older one. A rank
    that writes a newer version leaves the older one to rank 0, which removes
    it when the round's index is merged.

    Args:
        subdir (str): Directory under ``work_dir``. Defaults to
            ``'client_states'``.
    """

    def __init__(self, subdir: str = 'client_states') -> None:
        self.subdir = subdir
        self.root: Optional[str] = None
        self.index: Dict[int, int] = {}
        self.committed: Dict[int, int] = {}
        self._pending_delete: List[str] = []

    def setup(self, work_dir: str) -> None:
        """Create the directory under ``work_dir``."""
        self.root = osp.join(work_dir, self.subdir)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, client_id: int, round_idx: int) -> str:
        assert self.root is not None, 'call setup(work_dir) first'
        return osp.join(self.root, f'client_{client_id:06d}.r{round_idx:06d}.pth')

    def load(self, client_id: int) -> Optional[Dict[str, Any]]:
        """Read a client's latest state, or None if it has none yet."""
        r = self.index.get(int(client_id))
        if r is None:
            return None
        return safe_torch_load(self._path(client_id, r))

    def save(self, client_id: int, state: Dict[str, Any],
             round_idx: int) -> None:
        """Write a new version of a client's state.

        Args:
            client_id (int): The client.
            state (dict): Plain tensors / scalars / dicts of them.
            round_idx (int): The round that produced it.
        """
        client_id = int(client_id)
        atomic_torch_save(state, self._path(client_id, round_idx))
        prev = self.index.get(client_id)
        if is_main_process() and prev is not None and prev != round_idx \
                and prev != self.committed.get(client_id):
            self._remove(self._path(client_id, prev))
        self.index[client_id] = int(round_idx)

    def merge_index(self, updates: Dict[int, int]) -> None:
        """Adopt index entries written by other ranks this round."""
        for k, r in updates.items():
            self.index[int(k)] = int(r)

    def commit(self) -> None:
        """Mark the current index as referenced by a checkpoint.

        Versions superseded by it are deleted at the next :meth:`prune`
        (after the checkpoint file is safely written).
        """
        for k, r in self.committed.items():
            if self.index.get(k) != r:
                self._pending_delete.append(self._path(k, r))
        self.committed = dict(self.index)

    def prune(self) -> None:
        """Delete versions that no written checkpoint can refer to."""
        for p in self._pending_delete:
            self._remove(p)
        self._pending_delete = []

    def remove_orphans(self) -> int:
        """Delete files not in the index (left by an interrupted round).

        Returns:
            int: Number of files removed.
        """
        if self.root is None or not osp.isdir(self.root):
            return 0
        removed = 0
        for name in os.listdir(self.root):
            m = _FILE_RE.match(name)
            if m is None:
                if name.endswith('.tmp'):
                    self._remove(osp.join(self.root, name))
                    removed += 1
                continue
            k, r = int(m.group(1)), int(m.group(2))
            if self.index.get(k) != r:
                self._remove(osp.join(self.root, name))
                removed += 1
        return removed

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

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

    def load_state_dict(self, state: dict) -> None:
        """Restore the index of a checkpoint and drop newer orphans."""
        clients = state['clients'].tolist()
        rounds = state['rounds'].tolist()
        self.index = {int(k): int(r) for k, r in zip(clients, rounds)}
        self.committed = dict(self.index)
        self._pending_delete = []
