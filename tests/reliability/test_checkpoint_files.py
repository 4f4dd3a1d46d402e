"""Crash-safe checkpoint files: atomic writes, write order, full disks.

``AtomicCheckpointHook``, the ``atomic_local`` file backend and the single
atomic write of :mod:`decssl_mm.utils.io`, each checked in isolation (each
test fails with mmengine's own ``CheckpointHook`` / ``LocalBackend``).
"""
import collections
import errno
import os
import os.path as osp

import pytest
import torch

import decssl_mm  # noqa: F401  (registers the components)
from decssl_mm.engine import AtomicCheckpointHook, AtomicLocalBackend
from decssl_mm.partition import Partition
from decssl_mm.utils.checksums import SUFFIX
from decssl_mm.utils.io import (atomic_torch_save, atomic_write,
                                atomic_write_text)

ATOMIC = dict(backend='atomic_local')
SHORT_WRITE = ('[enforce fail at inline_container.cc:672] unexpected pos '
               '768 vs 662')


# ------------------------------------------------------------ atomic write
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A writer that dies before the rename leaves the old checkpoint."""
    from mmengine.runner import save_checkpoint
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'w': torch.ones(3)}, path, backend_args=ATOMIC)

    def crash(fd):  # the process dies after writing, before the rename
        raise OSError('killed')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='killed'):
        save_checkpoint({'w': torch.zeros(3)}, path, backend_args=ATOMIC)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)['w'],
                       torch.ones(3))
    assert _listing(str(tmp_path)) == ['epoch_1.pth']  # no temp left


def _listing(directory):
    """Sorted file names, checksum sidecars left out."""
    return sorted(n for n in os.listdir(directory) if not n.endswith(SUFFIX))


def test_every_atomic_writer_uses_the_one_core(tmp_path, monkeypatch):
    """Text, torch files, partitions and backend writes all end in
    ``atomic_write`` (its temp names, its cleanup)."""
    import decssl_mm.utils.io as io_mod
    calls = []
    real = io_mod.atomic_write

    def spy(path, write_fn):
        calls.append(osp.basename(path))
        return real(path, write_fn)

    monkeypatch.setattr(io_mod, 'atomic_write', spy)
    import decssl_mm.engine.atomic_local_backend as backend_mod
    import decssl_mm.partition.partition as partition_mod
    monkeypatch.setattr(backend_mod, 'atomic_write', spy)
    atomic_write_text('x', str(tmp_path / 'a.txt'))
    atomic_torch_save({'w': torch.ones(1)}, str(tmp_path / 'b.pth'))
    Partition([[0], [1]], num_samples=2).save(str(tmp_path / 'c.json'))
    AtomicLocalBackend().put(b'd', str(tmp_path / 'd.bin'))
    assert calls == ['a.txt', 'b.pth', 'b.pth.sha256', 'c.json', 'd.bin',
                     'd.bin.sha256']  # checksum sidecars: the same core
    assert partition_mod.atomic_write_text is io_mod.atomic_write_text
    assert _listing(str(tmp_path)) == [
        'a.txt', 'b.pth', 'c.json', 'd.bin'
    ]


def test_atomic_write_keeps_the_usual_file_mode(tmp_path):
    old = os.umask(0o027)
    try:
        import decssl_mm.utils.io as io_mod
        io_mod._UMASK = None
        atomic_write_text('x', str(tmp_path / 'a.txt'))
    finally:
        os.umask(old)
        io_mod._UMASK = None
    assert os.stat(str(tmp_path / 'a.txt')).st_mode & 0o777 == 0o640


# ----------------------------------------------------------- write order
class _FakeRunner:
    """What ``CheckpointHook._save_checkpoint_with_step`` uses of a runner."""

    def __init__(self, work_dir):
        from mmengine.logging import MessageHub
        self.work_dir = work_dir
        self.message_hub = MessageHub.get_instance(f'ckpt-files-{work_dir}')

    def save_checkpoint(self, out_dir, filename, *args, backend_args=None,
                        **kwargs):
        from mmengine.runner import save_checkpoint
        save_checkpoint({'name': filename}, os.path.join(out_dir, filename),
                        backend_args=backend_args)


def _hook(work, max_keep=1, cls=AtomicCheckpointHook):
    from mmengine.fileio import get_file_backend
    hook = cls(interval=1, max_keep_ckpts=max_keep)
    hook.out_dir = work
    hook.file_backend = get_file_backend(work)
    if max_keep > 0:
        hook.keep_ckpt_ids = collections.deque([], max_keep)
    return hook


def test_pointer_moves_before_old_checkpoint_is_removed(tmp_path,
                                                        monkeypatch):
    work = str(tmp_path)
    runner = _FakeRunner(work)
    hook = _hook(work)
    events = []
    real_replace, real_remove = os.replace, os.remove

    def replace(src, dst):
        events.append(('write', os.path.basename(dst)))
        return real_replace(src, dst)

    def remove(path):
        events.append(('remove', os.path.basename(path)))
        return real_remove(path)

    monkeypatch.setattr(os, 'replace', replace)
    monkeypatch.setattr(os, 'remove', remove)
    hook._save_checkpoint_with_step(runner, 1, {})
    hook._save_checkpoint_with_step(runner, 2, {})
    monkeypatch.undo()
    events = [e for e in events if not e[1].endswith(SUFFIX)]
    assert events == [('write', 'epoch_1.pth'), ('write', 'last_checkpoint'),
                      ('write', 'epoch_2.pth'), ('write', 'last_checkpoint'),
                      ('remove', 'epoch_1.pth')]
    with open(os.path.join(work, 'last_checkpoint')) as f:
        assert f.read() == os.path.join(work, 'epoch_2.pth')
    assert _listing(work) == ['epoch_2.pth', 'last_checkpoint']


def test_removal_extension_point_sees_the_kept_checkpoints(tmp_path):
    seen = []

    class Recording(AtomicCheckpointHook):

        def before_remove_checkpoint(self, runner, path):
            with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
                pointer = f.read()
            seen.append((osp.basename(path), osp.basename(pointer),
                         [osp.basename(p) for p in self.kept_checkpoints],
                         osp.isfile(path)))

    work = str(tmp_path)
    runner = _FakeRunner(work)
    hook = _hook(work, max_keep=2, cls=Recording)
    for step in (1, 2, 3, 4):
        hook._save_checkpoint_with_step(runner, step, {})
    assert seen == [
        ('epoch_1.pth', 'epoch_3.pth', ['epoch_2.pth', 'epoch_3.pth'], True),
        ('epoch_2.pth', 'epoch_4.pth', ['epoch_3.pth', 'epoch_4.pth'], True),
    ]
    unlimited = _hook(work, max_keep=-1, cls=Recording)
    for step in (5, 6):
        unlimited._save_checkpoint_with_step(runner, step, {})
    assert unlimited.kept_checkpoints is None
    assert len(seen) == 2  # nothing removed without max_keep_ckpts
    assert _listing(work) == [
        'epoch_3.pth', 'epoch_4.pth', 'epoch_5.pth', 'epoch_6.pth',
        'last_checkpoint'
    ]


def test_config_scope_selects_the_atomic_hook():
    """Default runtime and plain ``CheckpointHook`` in the decssl_mm scope
    build the atomic hook; ``mmengine.CheckpointHook`` stays mmengine's."""
    from mmengine.config import Config
    from mmengine.hooks import CheckpointHook
    from mmengine.registry import HOOKS, DefaultScope
    cfg = Config.fromfile('configs/_base_/default_runtime.py')
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    with DefaultScope.overwrite_default_scope('decssl_mm'):
        for name in ('AtomicCheckpointHook', 'CheckpointHook'):
            hook = HOOKS.build(dict(type=name, interval=1))
            assert type(hook) is AtomicCheckpointHook
            assert hook.backend_args == ATOMIC
        plain = HOOKS.build(dict(type='mmengine.CheckpointHook', interval=1))
        assert type(plain) is CheckpointHook
        remote = HOOKS.build(dict(type='CheckpointHook', out_dir='s3://b/c'))
        assert remote.backend_args is None  # remote: mmengine's backend
    import mmdet.utils
    mmdet.utils.register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        hook = HOOKS.build(dict(type='AtomicCheckpointHook', interval=1))
        assert type(hook) is AtomicCheckpointHook  # opt-in in other scopes
        assert type(HOOKS.build(dict(type='CheckpointHook'))) is \
            CheckpointHook


# ---------------------------------------------------- the pointer file
def test_pointer_temp_file_is_not_a_followed_symlink(tmp_path):
    """A symlink planted at the pointer's old, predictable temp name (and
    at guessable ones) is neither followed nor written through."""
    work = tmp_path / 'work'
    work.mkdir()
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    planted = [work / f'.last_checkpoint.{os.getpid()}.tmp',
               work / '.last_checkpoint.tmp']
    for link in planted:
        os.symlink(str(victim), str(link))
    hook = _hook(str(work))
    runner = _FakeRunner(str(work))
    hook.write_pointer(runner, str(work / 'epoch_1.pth'))
    assert victim.read_text() == 'precious'
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_1.pth')
    assert not (work / 'last_checkpoint').is_symlink()
    assert all(not p.exists() or p.is_symlink() for p in planted)


# ----------------------------------------------------------- full disk
def test_full_disk_in_torch_save_names_the_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'client_000001.r000002.pth')
    atomic_torch_save({'w': torch.ones(2)}, path)

    def full(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise RuntimeError(SHORT_WRITE)

    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(OSError) as e:
        atomic_torch_save({'w': torch.zeros(2)}, path)
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC
    assert f'no space left writing {path}' in str(e.value)
    assert torch.equal(torch.load(path, weights_only=True)['w'],
                       torch.ones(2))
    assert _listing(str(tmp_path)) == [osp.basename(path)]


def test_enospc_from_a_write_names_the_file(tmp_path):
    path = str(tmp_path / 'partition.json')
    atomic_write_text('old', path)

    def full(f):
        raise OSError(errno.ENOSPC, 'No space left on device')

    with pytest.raises(OSError, match=r'no space left writing .*partition'):
        atomic_write(path, full)
    with open(path) as f:
        assert f.read() == 'old'
    with pytest.raises(OSError, match='Permission') as e:  # not remapped
        atomic_write(path, lambda f: (_ for _ in ()).throw(
            PermissionError(errno.EACCES, 'Permission denied')))
    assert e.value.errno == errno.EACCES


def test_full_disk_while_saving_keeps_the_previous_checkpoint(
        tmp_path, monkeypatch):
    """Through the hook: torch's short-write error becomes ``no space left
    writing <checkpoint>``; pointer, kept checkpoints and the hook's
    bookkeeping stay on the previous checkpoint."""
    work = str(tmp_path)
    runner = _FakeRunner(work)
    hook = _hook(work, max_keep=1)
    hook._save_checkpoint_with_step(runner, 1, {})

    def full(obj, f, *args, **kwargs):
        raise RuntimeError(SHORT_WRITE)

    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(OSError, match=r'no space left writing .*epoch_2\.pth'
                       ) as e:
        hook._save_checkpoint_with_step(runner, 2, {})
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC
    assert str(e.value).count('no space left writing') == 1  # wrapped once
    assert _listing(work) == ['epoch_1.pth', 'last_checkpoint']
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'epoch_1.pth')
    assert list(hook.keep_ckpt_ids) == [1]
    assert runner.message_hub.get_info('keep_ckpt_ids') == [1]
    assert hook.last_ckpt == osp.join(work, 'epoch_1.pth')
    # the next save works and then removes epoch_1
    hook._save_checkpoint_with_step(runner, 2, {})
    assert _listing(work) == ['epoch_2.pth', 'last_checkpoint']
