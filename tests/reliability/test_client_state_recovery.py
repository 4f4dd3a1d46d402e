"""Client states across checkpoints: kept while any checkpoint needs them,
and a damaged file costs the client its local state, not its round."""
import glob
import os
import os.path as osp

import torch
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg

MOCO = 'configs/decssl/mocov2_r18_fmnist_dir0.1.py'
SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def _cfg(fmnist_root, work_dir, rounds, resume_from=None):
    cfg = tiny_federated_cfg(
        MOCO, fmnist_root, str(work_dir), rounds=rounds, num_clients=2,
        local_iters=1,
        extra={'default_hooks.checkpoint.max_keep_ckpts': 3})
    cfg.model.queue_len = 16
    cfg.randomness = dict(seed=5, deterministic=True)
    # one schedule for every run, whatever its number of rounds
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=6,
                                by_epoch=True, begin=0, end=6)]
    if resume_from:
        cfg.resume = True
        cfg.load_from = str(resume_from)
    return cfg


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _states(work_dir):
    return sorted(osp.basename(p) for p in glob.glob(
        osp.join(str(work_dir), 'client_states', '*.pth')))


def _close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6), k


def test_resume_from_oldest_then_newest_kept_checkpoint(fmnist_root,
                                                        tmp_path):
    ref = _train(_cfg(fmnist_root, tmp_path / 'ref', 6))
    work = tmp_path / 'w'
    _train(_cfg(fmnist_root, work, 5))
    kept = sorted(
        osp.basename(p) for p in glob.glob(str(work / 'epoch_*.pth')))
    assert kept == ['epoch_3.pth', 'epoch_4.pth', 'epoch_5.pth']
    # every version a kept checkpoint refers to is on disk
    before = _states(work)
    assert {'client_000000.r000002.pth', 'client_000000.r000004.pth'} <= \
        set(before)
    # resume from the oldest: the newer checkpoints' states stay
    _train(_cfg(fmnist_root, work, 4, resume_from=work / 'epoch_3.pth'))
    assert 'client_000000.r000004.pth' in _states(work)
    # ... so the newest still resumes, and ends as an uninterrupted run
    last = _train(_cfg(fmnist_root, work, 6, resume_from=work / 'epoch_5.pth'))
    _close(ref.train_loop.global_state, last.train_loop.global_state)
    # kept: epoch_4..6, which refer to the versions of rounds 3..5
    assert _states(work) == [f'client_{k:06d}.r{r:06d}.pth'
                             for k in (0, 1) for r in (3, 4, 5)]
    for k in (0, 1):
        _close(ref.train_loop.store.load(k)['local'],
               last.train_loop.store.load(k)['local'])


def test_truncated_client_state_restarts_the_client(fmnist_root, tmp_path):
    keep_empty = {'train_cfg.client_state': dict(
        type='DiskClientStateStore', skip_empty=False)}
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path), rounds=1,
                             num_clients=2, local_iters=1, extra=keep_empty)
    _train(cfg)
    path = str(tmp_path / 'client_states' / 'client_000000.r000000.pth')
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path), rounds=2,
                             num_clients=2, local_iters=1, extra=keep_empty)
    cfg.resume = True
    runner = _train(cfg)
    hub = runner.message_hub
    assert hub.get_scalar('train/federated/clients_ok').current() == 2
    assert hub.get_scalar('train/federated/clients_failed').current() == 0
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert 'client_000000.r000000.pth cannot be read' in log
    assert log.count('cannot be read') == 1
    # the client wrote a fresh state for round 1
    assert 'client_000000.r000001.pth' in _states(tmp_path)
