"""Each fix of decssl_mm.compat, with a test that fails without it."""
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import decssl_mm  # noqa: F401  (applies the fixes)
from decssl_mm import compat
from decssl_mm.utils import safe_torch_load


def test_all_fixes_applied_on_import():
    assert compat.apply_all() == [
        'weights_only_allowlist', 'numpy2_adjust_hue', 'cpu_torchrun',
        'atomic_checkpoint_io'
    ]


# ------------------------------------------------------- 1. weights_only
def _hub_checkpoint():
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat-test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(0.5))
    return dict(meta=dict(seed=np.int64(3), epoch=1),
                message_hub=hub.state_dict(),
                state_dict={'w': torch.ones(2)})


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    torch.save(_hub_checkpoint(), path)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert buf.mean() == pytest.approx(1.0)
    assert int(ckpt['meta']['seed']) == 3


class _Hostile:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_pickled_callable_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Hostile()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    with pytest.raises(ValueError, match='evil.pth'):
        safe_torch_load(path)


def test_getattr_is_not_allowlisted():
    buf = io.BytesIO()
    torch.save({'f': getattr}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf, weights_only=True)


# ---------------------------------------------------------- 2. numpy 2
@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_negative_hue_jitter(backend):
    import mmcv
    img = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
    out = mmcv.adjust_hue(img, -0.3, backend=backend)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)
    back = mmcv.adjust_hue(out, 0.3, backend=backend)
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 12


def test_color_jitter_transform_with_negative_hue():
    from mmpretrain.datasets.transforms import ColorJitter
    t = ColorJitter(hue=0.5)
    img = np.random.default_rng(1).integers(0, 255, (8, 8, 3), np.uint8)
    for seed in range(10):  # several draws, some negative
        np.random.seed(seed)
        assert t({'img': img.copy()})['img'].shape == img.shape


# --------------------------------------------------- 3. CPU torchrun
def test_pytorch_launcher_without_cuda(tmp_path):
    code = (
        'import decssl_mm, torch.distributed as d\n'
        'from mmengine.dist import init_dist\n'
        'init_dist("pytorch")\n'
        'print("backend", d.get_backend(), d.get_world_size())\n')
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
               MASTER_ADDR='127.0.0.1', MASTER_PORT='29631',
               CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'backend gloo 1' in out.stdout


def test_ddp_on_cpu_builds_without_device_ids(tmp_path):
    code = (
        'import decssl_mm, torch, torch.distributed as d\n'
        'from mmengine.dist import init_dist\n'
        'from mmengine.model import MMDistributedDataParallel\n'
        'from mmpretrain.models import ImageClassifier\n'
        'init_dist("pytorch")\n'
        'm = ImageClassifier(backbone=dict(type="ResNet", depth=18,'
        ' base_channels=4))\n'
        'w = MMDistributedDataParallel(module=m, device_ids=[0])\n'
        'print("wrapped", w.device_ids)\n')
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
               MASTER_ADDR='127.0.0.1', MASTER_PORT='29632',
               CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'wrapped None' in out.stdout


# ------------------------------------------------ 4. checkpoint files
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A writer that dies before the rename leaves the old checkpoint."""
    from mmengine.runner import save_checkpoint
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'w': torch.ones(3)}, path)

    def crash(fd):  # the process dies after writing, before the rename
        raise OSError('killed')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='killed'):
        save_checkpoint({'w': torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)['w'],
                       torch.ones(3))
    assert os.listdir(str(tmp_path)) == ['epoch_1.pth']  # no temp left


class _FakeRunner:
    """What ``CheckpointHook._save_checkpoint_with_step`` uses of a runner."""

    def __init__(self, work_dir):
        from mmengine.logging import MessageHub
        self.work_dir = work_dir
        self.message_hub = MessageHub.get_instance('compat-ckpt-order')

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        from mmengine.runner import save_checkpoint
        save_checkpoint({'name': filename}, os.path.join(out_dir, filename))


def test_pointer_moves_before_old_checkpoint_is_removed(tmp_path,
                                                        monkeypatch):
    from mmengine.fileio import get_file_backend
    from mmengine.hooks import CheckpointHook
    work = str(tmp_path)
    runner = _FakeRunner(work)
    hook = CheckpointHook(interval=1, max_keep_ckpts=1)
    hook.out_dir = work
    hook.file_backend = get_file_backend(work)
    hook.keep_ckpt_ids = __import__('collections').deque([], 1)
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
    assert events == [('write', 'epoch_1.pth'), ('write', 'last_checkpoint'),
                      ('write', 'epoch_2.pth'), ('write', 'last_checkpoint'),
                      ('remove', 'epoch_1.pth')]
    with open(os.path.join(work, 'last_checkpoint')) as f:
        assert f.read() == os.path.join(work, 'epoch_2.pth')
    assert sorted(os.listdir(work)) == ['epoch_2.pth', 'last_checkpoint']


def test_local_loader_is_weights_only_and_names_file(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import _load_checkpoint
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Hostile()}, evil)
    # even when the environment asks torch to trust every file
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(pickle.UnpicklingError, match='evil.pth') as e:
        _load_checkpoint(evil, map_location='cpu')
    assert 'posix.system' in str(e.value) or 'system' in str(e.value)
    torn = str(tmp_path / 'torn.pth')
    torch.save({'w': torch.ones(100)}, torn)
    with open(torn, 'r+b') as f:
        f.truncate(200)
    with pytest.raises(RuntimeError, match='torn.pth.*truncated'):
        _load_checkpoint(torn, map_location='cpu')
