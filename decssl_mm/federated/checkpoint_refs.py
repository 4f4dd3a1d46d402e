"""Which round checkpoints exist on disk, and which client states they use.
"""
import logging
import os.path as osp
from typing import Callable, Dict, Optional

from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from decssl_mm.utils.io import safe_torch_load


def checkpoint_path_fn(runner) -> Optional[Callable[[int], str]]:
    """``round -> checkpoint file`` of the run's by-epoch checkpoint hook.

    Returns:
        callable | None: None without an epoch-based ``CheckpointHook``.
    """
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook) and hook.by_epoch:
            out_dir = getattr(hook, 'out_dir', None) or runner.work_dir
            tmpl = hook.filename_tmpl
            return lambda r: osp.join(out_dir, tmpl.format(int(r)))
    return None


def checkpoint_alive_fn(runner) -> Optional[Callable[[int], bool]]:
    """``round -> does its checkpoint file exist`` (None: unknown)."""
    path = checkpoint_path_fn(runner)
    if path is None:
        return None
    return lambda r: osp.isfile(path(r))


def checkpoint_indices(runner, max_round: int,
                       skip: int) -> Dict[int, Dict[int, int]]:
    """The client-state index of every round checkpoint on disk.

    Args:
        runner (Runner): The runner (its checkpoint hook locates files).
        max_round (int): Last round to look for.
        skip (int): A round not to read (the checkpoint resumed from).

    Returns:
        dict: ``round -> {client: version round}``; unreadable checkpoints
        are skipped with a WARNING.
    """
    path = checkpoint_path_fn(runner)
    out: Dict[int, Dict[int, int]] = {}
    if path is None:
        return out
    for r in range(1, int(max_round) + 1):
        p = path(r)
        if r == skip or not osp.isfile(p):
            continue
        try:
            st = safe_torch_load(p)['federated']['client_states']
        except (OSError, ValueError, KeyError, TypeError) as e:
            print_log(f'Cannot read the client-state index of {p} '
                      f'({type(e).__name__}: {e}); the client states only '
                      'it refers to may be removed.', logger='current',
                      level=logging.WARNING)
            continue
        out[r] = dict(zip(st['clients'].tolist(), st['rounds'].tolist()))
    return out
