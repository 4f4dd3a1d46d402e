"""Which round checkpoints exist on disk, and which client states they use.
"""
import logging
import os
import os.path as osp
import re
from typing import Callable, Dict, Optional

from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from decssl_mm.utils.io import safe_torch_load


def _epoch_checkpoint_hook(runner) -> Optional[CheckpointHook]:
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook) and hook.by_epoch:
            return hook
    return None


def checkpoint_path_fn(runner) -> Optional[Callable[[int], str]]:
    """``round -> checkpoint file`` of the run's by-epoch checkpoint hook.

    Returns:
        callable | None: None without an epoch-based ``CheckpointHook``.
    """
    hook = _epoch_checkpoint_hook(runner)
    if hook is None:
        return None
    out_dir = getattr(hook, 'out_dir', None) or runner.work_dir
    tmpl = hook.filename_tmpl
    return lambda r: osp.join(out_dir, tmpl.format(int(r)))


def checkpoint_alive_fn(runner) -> Optional[Callable[[int], bool]]:
    """``round -> does its checkpoint file exist`` (None: unknown)."""
    path = checkpoint_path_fn(runner)
    if path is None:
        return None
    return lambda r: osp.isfile(path(r))


def checkpoint_rounds(runner) -> Dict[int, str]:
    """Every round checkpoint on disk: ``round -> file``, any round."""
    hook = _epoch_checkpoint_hook(runner)
    if hook is None:
        return {}
    out_dir = getattr(hook, 'out_dir', None) or runner.work_dir
    pattern = re.compile('^' + re.escape(hook.filename_tmpl).replace(
        re.escape('{}'), r'(\d+)') + '$')
    found = {}
    if osp.isdir(out_dir):
        for name in os.listdir(out_dir):
            m = pattern.match(name)
            if m:
                found[int(m.group(1))] = osp.join(out_dir, name)
    return found


def checkpoint_indices(runner, skip: int) -> Dict[int, Dict[int, int]]:
    """The client-state index of every round checkpoint on disk.

    Args:
        runner (Runner): The runner (its checkpoint hook locates files).
        skip (int): A round not to read (the checkpoint resumed from).

    Returns:
        dict: ``round -> {client: version round}``; unreadable checkpoints
        are skipped with a WARNING.
    """
    out: Dict[int, Dict[int, int]] = {}
    for r, p in sorted(checkpoint_rounds(runner).items()):
        if r == skip:
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
