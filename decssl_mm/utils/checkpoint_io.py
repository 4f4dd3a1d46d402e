"""Crash-safe writing and code-free reading of mmengine checkpoints.

mmengine 0.10 writes ``epoch_N.pth`` by streaming ``torch.save`` output into
the destination file, and ``last_checkpoint`` (the pointer ``--resume``
follows) with a plain ``open(..., 'w')``; a process killed during either
write leaves a torn checkpoint or an empty pointer, and the run cannot be
resumed. It also removes the oldest checkpoint (``max_keep_ckpts``) *before*
writing the new one. The functions here are installed by
:func:`decssl_mm.compat.patch_checkpoint_io`:

- :func:`save_checkpoint` replaces ``mmengine.runner.save_checkpoint`` for
  local paths: temporary file in the same directory, ``fsync``, atomic
  rename, ``fsync`` of the directory. Remote backends are left to mmengine.
- :func:`save_checkpoint_with_step` replaces
  ``CheckpointHook._save_checkpoint_with_step``: the new checkpoint is
  written first, then the pointer (atomically), and only then are checkpoints
  beyond ``max_keep_ckpts`` removed. At every instant the pointer names a
  complete checkpoint.
- :func:`load_from_local` replaces mmengine's loader of local checkpoint
  files (``--resume``, ``load_from``, ``init_cfg=dict(type='Pretrained')``):
  always ``torch.load(weights_only=True)``, whatever the environment says,
  with errors that name the file.
"""
import glob
import os
import os.path as osp
import pickle
from typing import Any, Optional

import torch

from .io import atomic_torch_save

#: The mmengine functions replaced by this module, kept for delegation.
_ORIGINALS = {}

POINTER_FILE = 'last_checkpoint'


def fsync_dir(path: str) -> None:
    """Flush a directory entry (a rename) to disk; no-op where unsupported.

    Args:
        path (str): The directory.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def remove_stale_temps(path: str) -> int:
    """Delete temporary files a killed writer of ``path`` left behind.

    Args:
        path (str): The destination file whose temporaries to remove.

    Returns:
        int: Number of files removed.
    """
    d, name = osp.split(osp.abspath(path))
    removed = 0
    for tmp in glob.glob(osp.join(glob.escape(d),
                                  '.' + glob.escape(name) + '*.tmp')):
        try:
            os.remove(tmp)
            removed += 1
        except FileNotFoundError:  # pragma: no cover - concurrent cleanup
            pass
    return removed


def atomic_write_text(text: str, path: str) -> None:
    """Write a small text file so that readers see the old or the new text.

    Args:
        text (str): The content.
        path (str): The destination.
    """
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = osp.join(d, f'.{osp.basename(path)}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    fsync_dir(d)


def _is_local(filename: str, file_client_args: Optional[dict],
              backend_args: Optional[dict]) -> bool:
    if file_client_args is not None or '://' in filename:
        return False
    backend = (backend_args or {}).get('backend', 'local')
    return backend in ('local', 'disk')


def save_checkpoint(checkpoint: dict,
                    filename: str,
                    file_client_args: Optional[dict] = None,
                    backend_args: Optional[dict] = None) -> None:
    """``mmengine.runner.save_checkpoint`` with atomic local writes.

    Args:
        checkpoint (dict): The checkpoint.
        filename (str): Destination; local paths are written atomically,
            anything else (``s3://``, ``pavi://``, custom backends) goes
            through mmengine's original function.
        file_client_args (dict, optional): As for mmengine.
        backend_args (dict, optional): As for mmengine.
    """
    if not _is_local(filename, file_client_args, backend_args):
        _ORIGINALS['save_checkpoint'](
            checkpoint,
            filename,
            file_client_args=file_client_args,
            backend_args=backend_args)
        return
    filename = osp.expanduser(filename)
    remove_stale_temps(filename)  # left by a writer killed earlier
    atomic_torch_save(checkpoint, filename)
    fsync_dir(osp.dirname(osp.abspath(filename)))


def _remove_checkpoint(hook, step: int) -> None:
    path = hook.file_backend.join_path(hook.out_dir,
                                       hook.filename_tmpl.format(step))
    if hook.file_backend.isfile(path):
        hook.file_backend.remove(path)
    elif hook.file_backend.isdir(path):  # checkpoints saved by deepspeed
        hook.file_backend.rmtree(path)


def save_checkpoint_with_step(hook, runner, step: int, meta: dict) -> None:
    """Crash-safe ``CheckpointHook._save_checkpoint_with_step``.

    Order: register the step among the kept ones, write the checkpoint
    (atomically), point ``last_checkpoint`` at it (atomically), then delete
    the checkpoints beyond ``max_keep_ckpts``. A kill at any instant leaves
    the pointer on a complete checkpoint.

    Args:
        hook (CheckpointHook): The hook.
        runner (Runner): The runner.
        step (int): Epoch or iteration of the checkpoint.
        meta (dict): Meta information saved with it.
    """
    from mmengine.dist import is_main_process
    stale = []
    if hook.max_keep_ckpts > 0:
        ids = hook.keep_ckpt_ids
        # the hook may save twice in one step (latest + best): keep once
        if not (len(ids) > 0 and ids[-1] == step):
            if len(ids) == hook.max_keep_ckpts:
                stale.append(ids.popleft())
            ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(ids))
    ckpt_filename = hook.filename_tmpl.format(step)
    hook.last_ckpt = hook.file_backend.join_path(hook.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', hook.last_ckpt)
    runner.save_checkpoint(
        hook.out_dir,
        ckpt_filename,
        hook.file_client_args,
        save_optimizer=hook.save_optimizer,
        save_param_scheduler=hook.save_param_scheduler,
        meta=meta,
        by_epoch=hook.by_epoch,
        backend_args=hook.backend_args,
        **hook.args)
    if not is_main_process():
        return
    atomic_write_text(hook.last_ckpt, osp.join(runner.work_dir,
                                               POINTER_FILE))
    for old in stale:
        _remove_checkpoint(hook, old)


def _unpickling_reason(e: Exception) -> str:
    """The informative line of torch's weights-only error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if 'GLOBAL' in ln or 'Unsupported' in ln or 'unsupported' in ln:
            return ln
    return lines[-1] if lines else type(e).__name__


def _safe_load(filename: str, map_location: Any) -> Any:
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'Refusing to load checkpoint {filename}: it holds objects other '
            'than tensors, numbers, strings and containers (e.g. a pickled '
            'function or class), and loading it could run code. Only '
            'checkpoints written by this project (or other plain state '
            f'dicts) are accepted. ({_unpickling_reason(e)})') from e
    except (RuntimeError, EOFError, OSError) as e:
        raise RuntimeError(
            f'Cannot read checkpoint {filename}: the file is truncated or '
            f'corrupt ({type(e).__name__}: {e}).') from e


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local checkpoint loader, code-free and naming the file.

    Args:
        filename (str): Local checkpoint file.
        map_location: As for ``torch.load``.

    Returns:
        The checkpoint.

    Raises:
        FileNotFoundError: If the file does not exist.
        pickle.UnpicklingError: If the file holds anything that could run
            code when unpickled (message names the file).
        RuntimeError: If the file is truncated or corrupt.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _safe_load(filename, map_location)


def install() -> None:
    """Install the replacements in mmengine (idempotent)."""
    import mmengine.runner as runner_pkg
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module
    from mmengine.hooks import CheckpointHook
    if checkpoint_module.save_checkpoint is not save_checkpoint:
        _ORIGINALS['save_checkpoint'] = checkpoint_module.save_checkpoint
    for mod in (checkpoint_module, runner_module, runner_pkg):
        mod.save_checkpoint = save_checkpoint
    CheckpointHook._save_checkpoint_with_step = save_checkpoint_with_step
    checkpoint_module.CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
