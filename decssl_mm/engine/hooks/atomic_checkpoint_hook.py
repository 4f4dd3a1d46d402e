"""A CheckpointHook that a crash at any instant cannot leave unresumable."""
import os.path as osp
from collections import deque
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS as MMENGINE_HOOKS

from decssl_mm.registry import HOOKS
from decssl_mm.utils.io import (atomic_write_text, no_space_left_as_oserror,
                                remove_stale_temps)
from ..atomic_local_backend import ATOMIC_LOCAL_BACKEND

#: The file in the work dir that ``--resume`` follows.
POINTER_FILE = 'last_checkpoint'


def _is_local(path: Optional[str]) -> bool:
    return path is None or '://' not in str(path)


@HOOKS.register_module(name=['AtomicCheckpointHook', 'CheckpointHook'])
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe writes and removals.

    mmengine 0.10 writes ``epoch_N.pth`` into the destination file, writes the
    ``last_checkpoint`` pointer with a plain ``open('w')`` and removes the
    oldest checkpoint (``max_keep_ckpts``) *before* writing the new one; a
    process killed at the wrong instant cannot be resumed. This hook:

    1. writes the checkpoint atomically (through the ``'atomic_local'`` file
       backend, :class:`~decssl_mm.engine.AtomicLocalBackend`, chosen when
       the checkpoint directory is local and no ``backend_args`` /
       ``file_client_args`` are given);
    2. then points ``last_checkpoint`` at it, atomically (temporary file from
       ``tempfile.mkstemp``, never a predictable name or a followed
       symlink);
    3. only then removes checkpoints beyond ``max_keep_ckpts``, calling
       :meth:`before_remove_checkpoint` for each.

    At every instant the pointer names a complete checkpoint. A full disk
    raises ``OSError: no space left writing <checkpoint>``; the previous
    checkpoint, the pointer and the kept checkpoints are unchanged.

    Registered in decssl_mm's ``HOOKS`` as ``AtomicCheckpointHook`` and also
    as ``CheckpointHook``, so configs in the ``decssl_mm`` scope that name
    mmengine's hook get this one (``type='mmengine.CheckpointHook'`` selects
    mmengine's own). mmengine's root ``HOOKS`` knows it as
    ``AtomicCheckpointHook`` too, so configs of other scopes (mmdet, mmseg)
    that import ``decssl_mm`` can select it by that name.

    Args:
        *args: See mmengine's ``CheckpointHook``.
        **kwargs: See mmengine's ``CheckpointHook``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if (self.backend_args is None and self.file_client_args is None
                and _is_local(self.out_dir)):
            self.backend_args = dict(backend=ATOMIC_LOCAL_BACKEND)

    # ------------------------------------------------------ extension points
    @property
    def kept_checkpoints(self) -> Optional[List[str]]:
        """Paths of the checkpoints kept on disk by ``max_keep_ckpts``.

        Oldest first; after a save it ends with the checkpoint just written.
        None when ``max_keep_ckpts <= 0`` (no checkpoint is ever removed).
        """
        if self.max_keep_ckpts <= 0:
            return None
        return [self.checkpoint_path(s) for s in getattr(
            self, 'keep_ckpt_ids', ())]

    def checkpoint_path(self, step: int) -> str:
        """Path of the checkpoint of an epoch or iteration.

        Args:
            step (int): The epoch (``by_epoch``) or iteration.

        Returns:
            str: ``out_dir`` joined with ``filename_tmpl`` of ``step``.
        """
        return self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))

    def before_remove_checkpoint(self, runner, path: str) -> None:
        """Called on the main process right before a checkpoint is removed.

        By then the newer checkpoint and the pointer to it are on disk, and
        :attr:`kept_checkpoints` lists the checkpoints that remain. Override
        to release what only ``path`` referred to. Does nothing by default.

        Args:
            runner (Runner): The runner.
            path (str): The checkpoint about to be removed.
        """

    # --------------------------------------------------------------- actions
    def write_pointer(self, runner, checkpoint: str) -> None:
        """Point ``<work_dir>/last_checkpoint`` at ``checkpoint``, atomically.

        Args:
            runner (Runner): The runner.
            checkpoint (str): Path of a complete checkpoint.
        """
        pointer = osp.join(runner.work_dir, POINTER_FILE)
        remove_stale_temps(pointer)
        atomic_write_text(checkpoint, pointer)

    def remove_checkpoint(self, runner, path: str) -> None:
        """Remove a checkpoint file (or directory) after
        :meth:`before_remove_checkpoint`.

        Args:
            runner (Runner): The runner.
            path (str): The checkpoint.
        """
        self.before_remove_checkpoint(runner, path)
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed
            self.file_backend.rmtree(path)

    # ------------------------------------------------------- mmengine hooks
    def before_train(self, runner) -> None:
        """Set up as mmengine does; checkpoints beyond a lowered
        ``max_keep_ckpts`` are removed through :meth:`remove_checkpoint`.

        Args:
            runner (Runner): The runner.
        """
        excess = []
        info = runner.message_hub.runtime_info
        if self.max_keep_ckpts > 0 and 'keep_ckpt_ids' in info:
            ids = list(runner.message_hub.get_info('keep_ckpt_ids'))
            if len(ids) > self.max_keep_ckpts:
                excess = ids[:-self.max_keep_ckpts]
                runner.message_hub.update_info(
                    'keep_ckpt_ids', ids[-self.max_keep_ckpts:])
        super().before_train(runner)
        if is_main_process():
            for step in excess:
                self.remove_checkpoint(runner, self.checkpoint_path(step))

    def _keep_step(self, runner, step: int) -> List[int]:
        """Add ``step`` to the kept checkpoints; return the steps dropped."""
        if self.max_keep_ckpts <= 0:
            return []
        ids = self.keep_ckpt_ids
        # latest and best may both save at one step: keep it once
        if len(ids) > 0 and ids[-1] == step:
            return []
        dropped = []
        if len(ids) == self.max_keep_ckpts:
            dropped.append(ids.popleft())
        ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(ids))
        return dropped

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Write checkpoint, then pointer, then remove dropped checkpoints.

        Args:
            runner (Runner): The runner.
            step (int): Epoch or iteration of the checkpoint.
            meta (dict): Meta information saved with it.
        """
        kept = list(self.keep_ckpt_ids) if self.max_keep_ckpts > 0 else []
        previous = self.last_ckpt
        dropped = self._keep_step(runner, step)
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.checkpoint_path(step)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            with no_space_left_as_oserror(self.last_ckpt):
                runner.save_checkpoint(
                    self.out_dir,
                    ckpt_filename,
                    self.file_client_args,
                    save_optimizer=self.save_optimizer,
                    save_param_scheduler=self.save_param_scheduler,
                    meta=meta,
                    by_epoch=self.by_epoch,
                    backend_args=self.backend_args,
                    **self.args)
        except BaseException:
            self._restore(runner, kept, previous)
            raise
        if not is_main_process():
            return
        self.write_pointer(runner, self.last_ckpt)
        for old in dropped:
            self.remove_checkpoint(runner, self.checkpoint_path(old))

    def _restore(self, runner, kept: List[int],
                 previous: Optional[str]) -> None:
        """Undo the bookkeeping of a checkpoint that was not written."""
        if self.max_keep_ckpts > 0:
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        self.last_ckpt = previous
        if previous is not None:
            runner.message_hub.update_info('last_ckpt', previous)


# Visible from every scope (mmdet, mmseg, ...) under its own name.
MMENGINE_HOOKS.register_module(
    name='AtomicCheckpointHook', module=AtomicCheckpointHook, force=True)
