"""configs/study: the faithful model and split, one schedule over total local
progress, and each config differs from its twin only where it should."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDY = osp.join(ROOT, 'configs', 'study')
ALL = sorted(osp.basename(p) for p in glob.glob(osp.join(STUDY, '*.py')))
FEDERATED = [n for n in ALL if not n.endswith('_central.py')]


def _cfg(name):
    return Config.fromfile(osp.join(STUDY, name))


def _inner(model):
    return model.algorithm if model.type == 'FeatARC' else model


def test_new_study_configs_exist():
    for name in ('mocov2_r18w16_fmnist_dec.py', 'mocov2_r18w16_fmnist_central.py',
                 'mocov2_r18w16_fmnist_featarc.py',
                 'mocov2_r18w16_fmnist_featarc_ours.py',
                 'simclr_r18w16_fmnist_featarc_ours.py',
                 'simsiam_r18w16_fmnist_featarc_ours.py',
                 'simclr_r18w16_fmnist_fedprox.py',
                 'byol_r18w16_fmnist_dec.py', 'byol_r18w16_fmnist_fedema.py'):
        assert name in ALL


@pytest.mark.parametrize('name', ALL)
def test_model_schedule_and_split(name):
    cfg = _cfg(name)
    backbone = _inner(cfg.model).backbone
    assert backbone.type == 'ResNet_CIFAR' and backbone.depth == 18
    assert backbone.base_channels == cfg.study_width == 16
    # one cosine over the total local epochs, stepped per local epoch
    tcfg = cfg.train_cfg
    assert tcfg.schedule_unit == 'local_epoch'
    (sched, ) = cfg.param_scheduler
    assert sched.T_max == sched.end == tcfg.rounds * tcfg.local_epochs
    part = cfg.train_dataloader.dataset.partition
    if name in FEDERATED:  # the paper's Dirichlet draw
        assert part.type == 'Dirichlet' and part.alpha == 0.1
        assert tuple(part.size_range) == (0.5, 1.5)
        assert part.num_clients == 10 and part.min_size == 16
        assert tcfg.get('optimizer_policy', 'reset') == 'reset'
    else:  # one client holding every image, plain training
        assert dict(part) == dict(type='IID', num_clients=1, seed=0)
        assert tcfg.optimizer_policy == 'keep'
    assert cfg.train_dataloader.dataset.dataset.subset == 2000
    # the paper's FedAvg: clients averaged uniformly
    assert tcfg.aggregator.weighting == 'uniform'
    # bf16 local steps where the device computes bf16 natively, float32
    # elsewhere (study_precision='auto')
    assert cfg.study_precision == 'auto'
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'auto'
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert [(h.type, h.only_native_bf16) for h in cfg.custom_hooks] == [
        ('ChannelsLastHook', True)]


def _diff(a, b, prefix=''):
    """Dotted keys where two config dicts differ."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f'{prefix}{k}.')
        elif va != vb:
            out.append(prefix + k)
    return out


@pytest.mark.parametrize('algo', ['simclr', 'simsiam', 'mocov2'])
def test_featarc_modes_differ_in_the_mode_only(algo):
    paper = _cfg(f'{algo}_r18w16_fmnist_featarc.py').to_dict()
    ours = _cfg(f'{algo}_r18w16_fmnist_featarc_ours.py').to_dict()
    assert paper['train_cfg']['server']['mode'] == 'paper'
    assert ours['train_cfg']['server']['mode'] == 'ours'
    assert _diff(paper, ours) == ['train_cfg.server.mode']
    # and FeatARC is its FedAvg twin plus the FeatARC wrapper and server
    dec = _cfg(f'{algo}_r18w16_fmnist_dec.py').to_dict()
    assert paper['model']['algorithm'] == dec['model']
    assert paper['train_dataloader'] == dec['train_dataloader']
    assert paper['param_scheduler'] == dec['param_scheduler']


def test_fedprox_and_fedema_differ_in_the_client_trainer_only():
    dec = _cfg('simclr_r18w16_fmnist_dec.py').to_dict()
    prox = _cfg('simclr_r18w16_fmnist_fedprox.py').to_dict()
    assert _diff(dec, prox) == ['train_cfg.trainer']
    assert prox['train_cfg']['trainer'] == dict(type='FedProxTrainer',
                                                mu=0.01)
    byol = _cfg('byol_r18w16_fmnist_dec.py').to_dict()
    ema = _cfg('byol_r18w16_fmnist_fedema.py').to_dict()
    assert _diff(byol, ema) == ['train_cfg.aggregator.exclude',
                                'train_cfg.trainer']
    assert ema['train_cfg']['trainer']['type'] == 'FedEMATrainer'


def test_mocov2_and_byol_build_at_study_width():
    import decssl_mm  # noqa: F401
    from mmengine.registry import DefaultScope

    from decssl_mm.registry import MODELS
    for name, neck_in in (('mocov2_r18w16_fmnist_dec.py', 128),
                          ('byol_r18w16_fmnist_dec.py', 128)):
        cfg = _cfg(name)
        assert cfg.model.neck.in_channels == neck_in
        with DefaultScope.overwrite_default_scope('decssl_mm'):
            model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) < 3e6


FMNIST_LABELS = '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz'


@pytest.mark.skipif(not osp.isfile(FMNIST_LABELS),
                    reason='needs the Debian package dataset-fashion-mnist')
@pytest.mark.parametrize('images', [2000, 5000])
def test_q3_split_is_feasible_over_20_clients(images):
    """The paper's draw over 20 clients: alpha 0.3 (Q3) finds a split for
    both partition draws, alpha 0.1 does not (run_study.sh Q3_PARTITION)."""
    import gzip

    import numpy as np

    from decssl_mm.partition import build_partition
    with gzip.open(FMNIST_LABELS) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:images]
    recipe = dict(type='Dirichlet', num_clients=20, min_size=16,
                  size_range=(0.5, 1.5))
    for seed in (0, 1):
        part = build_partition(dict(recipe, alpha=0.3, seed=seed), labels)
        sizes = part.client_sizes
        assert sizes.min() >= images / 40 and sizes.max() <= images * 1.5 / 20
    with pytest.raises(ValueError, match='size_range'):
        # (0 of 2,000 single draws succeed, benchmarks/bench_paper_draw.py)
        build_partition(dict(recipe, alpha=0.1, seed=0, max_tries=100),
                        labels)


def test_fp32_precision_knob_restores_the_plain_wrapper(monkeypatch):
    monkeypatch.setenv('STUDY_PRECISION', 'fp32')
    cfg = _cfg('simclr_r18w16_fmnist_dec.py')
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert 'dtype' not in cfg.optim_wrapper
    assert list(cfg.custom_hooks) == []
    monkeypatch.setenv('STUDY_PRECISION', 'bf16')
    cfg = _cfg('simclr_r18w16_fmnist_dec.py')
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert [dict(h) for h in cfg.custom_hooks] == [
        dict(type='ChannelsLastHook')]
    monkeypatch.setenv('STUDY_PRECISION', 'fp16')
    with pytest.raises(Exception, match='study_precision'):
        _cfg('simclr_r18w16_fmnist_dec.py')
