"""Every baseline config runs; Dec-SL learns; Dec-SLRep probes Dec-SL."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from _helpers.baseline_configs import tiny_cfg
from _helpers.configs import ROOT

DEC_SL = 'configs/baselines/dec_sl/supervised_r18_fmnist_dir0.1.py'
CENTRAL_SL = ('configs/baselines/centralized_sl/'
              'supervised_r18_fmnist_central.py')
SLREP = 'configs/baselines/dec_slrep/resnet18_linear-100e_fmnist_dec-sl.py'
CENTRAL_SSL = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs/baselines/centralized_ssl/*.py')))


def _val_top1(runner) -> np.ndarray:
    return runner.message_hub.get_scalar('val/accuracy/top1').data[0]


def test_family_is_complete():
    names = {osp.basename(p) for p in CENTRAL_SSL}
    for algo in ('mocov2', 'simclr', 'byol', 'simsiam', 'mocov3',
                 'barlowtwins', 'densecl', 'swav'):
        assert f'{algo}_r18_fmnist_central.py' in names
    found = {osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs/baselines/*/*.py'))}
    assert found == set(CENTRAL_SSL) | {DEC_SL, CENTRAL_SL, SLREP}


@pytest.mark.parametrize('config', CENTRAL_SSL)
def test_centralized_ssl_runs_one_round(config, fmnist_root, tmp_path):
    cfg = tiny_cfg(config, fmnist_root, str(tmp_path), rounds=1,
                   local_iters=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    ds = runner.train_dataloader.dataset
    assert ds.num_clients == 1 and ds.client_sizes[0] == len(ds)
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss)
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))


def test_twins_differ_only_where_they_must():
    from mmengine.config import Config
    twin = Config.fromfile(
        osp.join(ROOT, 'configs/decssl/simclr_r18_fmnist_dir0.1.py'))
    central = Config.fromfile(osp.join(
        ROOT, 'configs/baselines/centralized_ssl/'
        'simclr_r18_fmnist_central.py'))
    assert central.model == twin.model
    assert central.optim_wrapper == twin.optim_wrapper
    assert central.param_scheduler == twin.param_scheduler
    for key in ('rounds', 'local_epochs'):
        assert central.train_cfg[key] == twin.train_cfg[key]
    assert central.train_dataloader.dataset.partition == dict(
        type='IID', num_clients=1, seed=0)
    dec_sl = Config.fromfile(osp.join(ROOT, DEC_SL))
    assert dec_sl.model.backbone == twin.model.backbone
    assert dec_sl.train_dataloader.dataset.partition == \
        twin.train_dataloader.dataset.partition
    assert dec_sl.train_cfg == twin.train_cfg
    assert dec_sl.optim_wrapper == twin.optim_wrapper
    assert dec_sl.param_scheduler == twin.param_scheduler
    for pattern in ('configs/featarc/*.py', ):
        for path in glob.glob(osp.join(ROOT, pattern)):
            fa = Config.fromfile(path)
            algo = osp.basename(path).split('_')[0]
            base = Config.fromfile(osp.join(
                ROOT, f'configs/decssl/{algo}_r18_fmnist_dir0.1.py'))
            assert fa.model.algorithm == base.model, path
            assert fa.train_dataloader == base.train_dataloader, path
            for key in ('rounds', 'local_epochs', 'aggregator'):
                assert fa.train_cfg[key] == base.train_cfg[key], path


@pytest.mark.parametrize('config', [DEC_SL, CENTRAL_SL])
def test_supervised_configs_run_one_round(config, fmnist_root, tmp_path):
    runner = Runner.from_cfg(
        tiny_cfg(config, fmnist_root, str(tmp_path), rounds=1,
                 local_iters=1))
    runner.train()
    top1 = _val_top1(runner)
    assert len(top1) == 1 and 0 <= top1[0] <= 100
    if config == CENTRAL_SL:
        assert runner.train_dataloader.dataset.num_clients == 1


def test_dec_sl_learns_a_separable_toy_set(fmnist_root, tmp_path):
    """The toy classes are stripe frequencies: train without random crops
    (a crop changes the frequency, i.e. the label), on 4 IID clients."""
    cfg = tiny_cfg(DEC_SL, fmnist_root, str(tmp_path), rounds=4,
                   local_iters=None, local_epochs=2)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.train_dataloader.dataset.dataset.pipeline = cfg.sup_test_pipeline
    cfg.train_dataloader.dataset.partition = dict(type='IID', num_clients=4,
                                                  seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    top1 = _val_top1(runner)
    assert len(top1) == 4  # validated after every round
    assert top1[-1] > 50, top1  # chance: 10 %
    assert top1[-1] > top1[0], top1


def test_dec_slrep_probes_the_dec_sl_backbone(fmnist_root, tmp_path):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))
    from extract_backbone import main as extract
    sl = Runner.from_cfg(tiny_cfg(DEC_SL, fmnist_root, str(tmp_path / 'sl'),
                                  rounds=1, local_iters=1))
    sl.train()
    backbone = str(tmp_path / 'backbone.pth')
    assert extract([str(tmp_path / 'sl' / 'epoch_1.pth'), backbone]) == 0

    cfg = tiny_cfg(SLREP, fmnist_root, str(tmp_path / 'rep'), rounds=1)
    cfg.model.backbone.init_cfg.checkpoint = backbone
    probe = Runner.from_cfg(cfg)
    probe.train()
    trained = sl.model.state_dict()
    for k, v in probe.model.backbone.state_dict().items():
        assert torch.equal(v, trained['backbone.' + k]), k  # loaded, frozen
    assert len(_val_top1(probe)) == 1
