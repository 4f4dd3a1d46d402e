"""AutocastOptimWrapper: bf16 autocast of the local steps on the CPU, built
from a config, trains a tiny study-form model with a finite loss."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook

import decssl_mm  # noqa: F401
from decssl_mm.engine.optim_wrappers import (AutocastOptimWrapper,
                                             resolve_autocast_dtype)
from decssl_mm.registry import OPTIM_WRAPPERS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_dtype_names_and_errors():
    assert resolve_autocast_dtype('bf16') is torch.bfloat16
    assert resolve_autocast_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match='optim_wrapper.dtype'):
        resolve_autocast_dtype('int8')


def test_forward_runs_in_bf16_and_weights_stay_float32():
    lin = nn.Linear(4, 3)
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='AutocastOptimWrapper', dtype='bfloat16',
        optimizer=torch.optim.SGD(lin.parameters(), lr=0.1)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    with wrapper.optim_context(lin):
        out = lin(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert lin.weight.dtype == torch.float32
    fp16 = AutocastOptimWrapper(
        dtype='float16', optimizer=torch.optim.SGD(lin.parameters(), lr=0.1))
    with pytest.raises(ValueError, match='needs a GPU'):
        with fp16.optim_context(lin):
            pass


@pytest.mark.parametrize('native', [False, True])
def test_auto_autocasts_only_where_bf16_is_native(monkeypatch, native):
    from decssl_mm.utils import native_bf16 as nb
    monkeypatch.setattr(nb, 'cpu_flags',
                        lambda: frozenset({'avx2', 'avx512_bf16'}
                                          if native else {'avx2'}))
    assert nb.native_bf16('cpu') is native
    assert nb.resolve_precision('auto') == ('bf16' if native else 'fp32')
    assert nb.resolve_precision('fp32') == 'fp32'
    lin = nn.Linear(4, 3)
    wrapper = AutocastOptimWrapper(
        dtype='auto', optimizer=torch.optim.SGD(lin.parameters(), lr=0.1))
    with wrapper.optim_context(lin):
        out = lin(torch.randn(2, 4))
    assert out.dtype == (torch.bfloat16 if native else torch.float32)
    from decssl_mm.study.plan import precision_of
    cfg = dict(optim_wrapper=dict(type='AutocastOptimWrapper', dtype='auto'))
    assert precision_of(cfg) == ('bf16' if native else 'fp32')


def test_cpu_flags_are_read_from_cpuinfo():
    from decssl_mm.utils.native_bf16 import cpu_flags
    flags = cpu_flags()
    if osp.exists('/proc/cpuinfo'):
        assert 'fpu' in flags or 'fp' in flags or 'asimd' in flags


def test_study_config_trains_in_bf16(tmp_path, fmnist_root, monkeypatch):
    from _helpers.configs import tiny_federated_cfg
    from mmengine.runner import Runner
    monkeypatch.setenv('STUDY_PRECISION', 'bf16')
    cfg = tiny_federated_cfg('configs/study/simclr_r18w16_fmnist_dec.py',
                             fmnist_root, str(tmp_path), num_clients=2)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    cfg.train_dataloader.dataset.partition = dict(type='IID', num_clients=2,
                                                  seed=0)
    cfg.train_cfg.schedule_unit = 'round'
    runner = Runner.from_cfg(cfg)
    losses = []
    runner.register_hook(_LossHook(losses), 'LOWEST')
    runner.train()
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    model = getattr(runner.model, 'module', runner.model)
    conv = model.backbone.conv1
    assert conv.weight.dtype == torch.float32
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


class _LossHook(Hook):
    priority = 'LOWEST'

    def __init__(self, out):
        self.out = out

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.out.append(float(outputs['loss']))


@pytest.mark.parametrize('gpu_bf16', [False, True])
def test_records_resolve_auto_for_the_training_device(monkeypatch, gpu_bf16):
    """A GPU run records what ``auto`` became on the GPU, not the CPU's
    answer."""
    import importlib
    plan = importlib.import_module('decssl_mm.study.plan')
    from decssl_mm.utils import native_bf16 as nb
    monkeypatch.setattr(nb, 'cpu_flags', lambda: frozenset({'avx2'}))
    monkeypatch.setattr(plan, 'training_device_type', lambda: 'cuda')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported',
                        lambda *a, **k: gpu_bf16)
    cfg = dict(optim_wrapper=dict(type='AutocastOptimWrapper', dtype='auto'))
    assert plan.precision_of(cfg) == ('bf16' if gpu_bf16 else 'fp32')
    assert plan.precision_of(cfg, 'cpu') == 'fp32'
    assert plan.derived_fields(cfg)['precision'] == (
        'bf16' if gpu_bf16 else 'fp32')
