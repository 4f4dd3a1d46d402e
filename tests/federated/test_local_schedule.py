"""schedule_unit='local_epoch': the learning rate follows total local
progress, whatever the split into rounds x local epochs."""
import math
from collections import defaultdict

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
TOTAL = 10  # local epochs per client in all


class _RecordLR(Hook):
    """``(round, client) -> [lr of every local step]``."""

    def __init__(self):
        self.lrs = defaultdict(list)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        client = runner.message_hub.get_info('client_id')
        lr = runner.optim_wrapper.optimizer.param_groups[0]['lr']
        self.lrs[(runner.train_loop.epoch, client)].append(lr)


def _lr_by_local_epoch(fmnist_root, tmp_path, rounds, unit):
    """Per client: the learning rate of each of its TOTAL local epochs."""
    local = TOTAL // rounds
    cfg = tiny_federated_cfg(
        SIMCLR, fmnist_root, str(tmp_path / f'{unit}_{rounds}'),
        rounds=rounds, num_clients=2, local_iters=None, local_epochs=local,
        batch_size=4)
    cfg.train_dataloader.dataset.dataset.subset = 16  # 2 clients x 8
    cfg.train_dataloader.dataset.partition = dict(type='IID',
                                                  num_clients=2, seed=0)
    cfg.train_cfg.schedule_unit = unit
    # the schedule spans every local epoch of the run
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=TOTAL,
                                by_epoch=True, begin=0, end=TOTAL)]
    cfg.default_hooks.checkpoint.interval = 100
    runner = Runner.from_cfg(cfg)
    rec = _RecordLR()
    runner.register_hook(rec)
    runner.train()
    per_client = defaultdict(list)
    for (r, client), lrs in sorted(rec.lrs.items()):
        steps = len(lrs) // local  # steps per local epoch (8 images / 4)
        assert steps * local == len(lrs)
        for e in range(local):
            epoch_lrs = lrs[e * steps:(e + 1) * steps]
            assert len(set(epoch_lrs)) == 1  # constant within a local epoch
            per_client[client].append(epoch_lrs[0])
        assert steps == 2
    # the schedulers stand at the end of the run (one step per unit)
    assert runner.param_schedulers[0]._global_step == (
        TOTAL if unit == 'local_epoch' else rounds)
    return dict(per_client)


def test_lr_follows_total_local_progress(fmnist_root, tmp_path):
    many = _lr_by_local_epoch(fmnist_root, tmp_path, 10, 'local_epoch')
    few = _lr_by_local_epoch(fmnist_root, tmp_path, 2, 'local_epoch')
    cosine = [0.06 * (1 + math.cos(math.pi * e / TOTAL)) / 2
              for e in range(TOTAL)]
    assert set(many) == set(few) == {0, 1}
    for client in (0, 1):
        # same learning rate at the same fraction of total local progress
        assert many[client] == pytest.approx(few[client], rel=1e-9)
        assert few[client] == pytest.approx(cosine, rel=1e-9)
    # by round (the default), 2 rounds x 5 epochs hold the rate per round
    by_round = _lr_by_local_epoch(fmnist_root, tmp_path, 2, 'round')
    assert by_round[0][:5] == pytest.approx([0.06] * 5)
    assert by_round[0] != pytest.approx(few[0])


def test_schedule_unit_is_checked(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_cfg.schedule_unit = 'iteration'
    with pytest.raises(ValueError, match='train_cfg.schedule_unit'):
        Runner.from_cfg(cfg).train()


class _StopAfterRound(Hook):
    """Stops the run after round index ``stop`` (checkpoint saved)."""

    priority = 'LOWEST'  # after CheckpointHook.after_train_epoch

    def __init__(self, stop):
        self.stop = stop

    def after_train_epoch(self, runner):
        if runner.epoch == self.stop:
            raise KeyboardInterrupt


def _local_epoch_run(fmnist_root, work_dir, resume=False, stop=None):
    """3 rounds x 2 local epochs, schedule over the 6 local epochs."""
    cfg = tiny_federated_cfg(
        SIMCLR, fmnist_root, work_dir, rounds=3, num_clients=2,
        local_iters=None, local_epochs=2, batch_size=4)
    cfg.train_dataloader.dataset.dataset.subset = 16
    cfg.train_dataloader.dataset.partition = dict(type='IID',
                                                  num_clients=2, seed=0)
    cfg.train_cfg.schedule_unit = 'local_epoch'
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=6,
                                by_epoch=True, begin=0, end=6)]
    cfg.default_hooks.checkpoint.interval = 1
    cfg.randomness = dict(seed=5, deterministic=True)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    rec = _RecordLR()
    runner.register_hook(rec)
    if stop is not None:
        runner.register_hook(_StopAfterRound(stop))
        with pytest.raises(KeyboardInterrupt):
            runner.train()
    else:
        runner.train()
    return runner, dict(rec.lrs)


def test_local_epoch_schedule_resumes_where_it_stopped(fmnist_root,
                                                       tmp_path):
    whole, lrs = _local_epoch_run(fmnist_root, str(tmp_path / 'whole'))
    part = str(tmp_path / 'part')
    _, first = _local_epoch_run(fmnist_root, part, stop=0)
    resumed, rest = _local_epoch_run(fmnist_root, part, resume=True)
    assert sorted(first) == [(0, 0), (0, 1)]
    assert sorted(rest) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    # the resumed rounds walk the same local epochs of the same schedule
    for key, seq in rest.items():
        assert seq == pytest.approx(lrs[key], rel=1e-12)
    assert rest[(2, 0)][-1] < rest[(1, 0)][0] < first[(0, 0)][-1]
    assert resumed.param_schedulers[0]._global_step == 6
    a = whole.model.state_dict()
    b = resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
