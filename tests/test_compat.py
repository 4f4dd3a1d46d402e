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
        'weights_only_allowlist', 'numpy2_adjust_hue', 'cpu_torchrun'
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


class _CraftedBuffer:
    """Pickles as a HistoryBuffer whose state remaps its statistics."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (HistoryBuffer, (), self.state)


def test_history_buffer_state_cannot_change_class_state(tmp_path):
    """A weights-only-loadable file whose HistoryBuffer state maps ``mean``
    to ``builtins.set`` must not rebind ``mean`` for every buffer."""
    from mmengine.logging import HistoryBuffer
    table = HistoryBuffer._statistics_methods
    before = dict(table)
    path = str(tmp_path / 'crafted.pth')
    state = dict(max_length=5, _log_history=np.array([1.0, 3.0]),
                 _count_history=np.array([1, 1]),
                 statistics_methods={'mean': set, 'evil': set},
                 _statistics_methods={'mean': set})
    torch.save({'message_hub': {'log_scalars': {'loss': _CraftedBuffer(
        state)}}}, path)
    for load in (lambda: torch.load(path, weights_only=True),
                 lambda: safe_torch_load(path)):
        buf = load()['message_hub']['log_scalars']['loss']
        assert isinstance(buf, HistoryBuffer)
        assert HistoryBuffer._statistics_methods is table
        assert table == before and 'evil' not in table
        assert table['mean'] is HistoryBuffer.mean
        assert '_statistics_methods' not in vars(buf)  # no shadowing
        assert buf.statistics('mean') == pytest.approx(2.0)
        assert buf.max_length == 5
        fresh = HistoryBuffer([2.0, 4.0], [1, 1])
        assert fresh.statistics('mean') == pytest.approx(3.0)


def test_history_buffer_state_is_checked(tmp_path):
    path = str(tmp_path / 'bad.pth')
    torch.save({'b': _CraftedBuffer(dict(max_length='many'))}, path)
    with pytest.raises(ValueError, match='max_length'):
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
