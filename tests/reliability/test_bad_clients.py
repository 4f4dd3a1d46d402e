"""A failing client is dropped from its round; all failing stops the run."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

import _helpers.reliability  # noqa: F401  (registers ClientFaultHook)
from _helpers.configs import tiny_federated_cfg

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def _cfg(fmnist_root, work_dir, faults, rounds=2, num_clients=4, **extra):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(work_dir),
                             rounds=rounds, num_clients=num_clients,
                             local_iters=1,
                             extra={f'train_cfg.{k}': v
                                    for k, v in extra.items()})
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.custom_hooks = [dict(type='ClientFaultHook', faults=faults)]
    # every trained client writes its (empty) state: what is asserted
    cfg.train_cfg.client_state = dict(type='DiskClientStateStore',
                                      skip_empty=False)
    return cfg


def _log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def _history(runner, key):
    return list(runner.message_hub.get_scalar(f'train/{key}').data[0])


def _has_state(work_dir, client, round_idx):
    return osp.isfile(osp.join(str(work_dir), 'client_states',
                               f'client_{client:06d}.r{round_idx:06d}.pth'))


def test_raising_and_nan_clients_are_dropped(fmnist_root, tmp_path):
    faults = [dict(client=1, kind='raise', round=1),
              dict(client=2, kind='nan', round=0)]
    runner = Runner.from_cfg(_cfg(fmnist_root, tmp_path, faults))
    runner.train()
    log = _log_text(runner)
    assert 'Round 1: client 1 failed' in log
    assert 'injected failure of client 1' in log
    assert 'Round 0: client 2 failed' in log
    assert 'non-finite values' in log
    assert 'dropping it from the round' in log
    # the rounds completed with the other clients
    assert _history(runner, 'federated/clients_ok') == [3.0, 3.0]
    assert _history(runner, 'federated/clients_failed') == [1.0, 1.0]
    assert runner.train_loop.epoch == 2
    for v in runner.model.state_dict().values():
        assert torch.isfinite(v.float()).all()
    # a dropped client's state is not written for that round
    assert not _has_state(tmp_path, 2, 0) and _has_state(tmp_path, 2, 1)
    assert _has_state(tmp_path, 1, 0) and not _has_state(tmp_path, 1, 1)


def test_dropped_client_is_left_out_of_the_average(fmnist_root, tmp_path):
    """Failing client 3 gives the same model as never having client 3."""
    faults = [dict(client=3, kind='nan')]
    failing = Runner.from_cfg(
        _cfg(fmnist_root, tmp_path / 'a', faults, rounds=1, num_clients=4))
    failing.train()
    # same partition and clients 0-2 only: client 3 is never sampled
    cfg = _cfg(fmnist_root, tmp_path / 'b', [], rounds=1, num_clients=4)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.train_loop.client_sampler.sample = \
        lambda r, sizes: torch.arange(3).numpy()
    runner.train()
    a, b = failing.model.state_dict(), runner.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6), k


def test_retry_with_workers_gives_the_fault_free_model(fmnist_root,
                                                      tmp_path):
    """Clients share one prefetching stream per round; a client that fails
    on its first batch skips the rest of its share of the stream, its retry
    reads the same batches again, and the next clients get their own."""

    def run(work_dir, faults):
        cfg = tiny_federated_cfg(
            SIMCLR, fmnist_root, str(work_dir), rounds=1, num_clients=3,
            local_iters=3, num_workers=2,
            extra={'train_cfg.client_retries': 1})
        cfg.randomness = dict(seed=0, deterministic=True)
        cfg.custom_hooks = [dict(type='ClientFaultHook', faults=faults)]
        runner = Runner.from_cfg(cfg)
        runner.train()
        return runner

    faulty = run(tmp_path / 'a', [dict(client=0, kind='raise', round=0,
                                       times=1)])
    clean = run(tmp_path / 'b', [])
    assert 'client 0 failed (attempt 1/2' in _log_text(faulty)
    assert _history(faulty, 'federated/clients_failed') == [0.0]
    a, b = faulty.model.state_dict(), clean.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize('retries,dropped', [(1, False), (0, True)])
def test_client_retries(fmnist_root, tmp_path, retries, dropped):
    faults = [dict(client=0, kind='raise', round=0, times=1)]  # transient
    runner = Runner.from_cfg(
        _cfg(fmnist_root, tmp_path, faults, rounds=1, num_clients=3,
             client_retries=retries))
    runner.train()
    log = _log_text(runner)
    assert f'client 0 failed (attempt 1/{retries + 1}' in log
    assert ('retrying' in log) == (not dropped)
    assert _history(runner, 'federated/clients_failed') == [float(dropped)]
    assert _has_state(tmp_path, 0, 0) == (not dropped)


def test_every_client_failing_stops_with_last_checkpoint_intact(
        fmnist_root, tmp_path):
    faults = [dict(client=k, kind='raise', round=1) for k in range(3)]
    cfg = _cfg(fmnist_root, tmp_path / 'run', faults, rounds=3,
               num_clients=3)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError) as e:
        runner.train()
    msg = str(e.value)
    assert 'Round 1: every participating client failed ([0, 1, 2])' in msg
    assert 'last checkpoint is intact' in msg
    assert 'client 0: RuntimeError: injected failure of client 0' in msg
    run = tmp_path / 'run'
    assert sorted(osp.basename(p) for p in glob.glob(str(run / '*.pth'))) \
        == ['epoch_1.pth']
    with open(str(run / 'last_checkpoint')) as f:
        assert osp.basename(f.read()) == 'epoch_1.pth'

    # the checkpoint resumes to the same model as a run that never failed
    clean = _cfg(fmnist_root, tmp_path / 'run', [], rounds=3, num_clients=3)
    clean.resume = True
    resumed = Runner.from_cfg(clean)
    resumed.train()
    straight = Runner.from_cfg(
        _cfg(fmnist_root, tmp_path / 'straight', [], rounds=3,
             num_clients=3))
    straight.train()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6), k


def test_state_write_failure_does_not_count_an_update_twice(fmnist_root,
                                                            tmp_path):
    """The update of a client whose state file cannot be written is already
    aggregated: it is neither retried nor dropped, and keeps its old state."""
    cfg = _cfg(fmnist_root, tmp_path / 'a', [], rounds=1, num_clients=3,
               client_retries=2)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    store = runner.train_loop.store
    real_save = store.save

    def save(client_id, state, round_idx):
        if client_id == 1:
            raise OSError('No space left on device')
        real_save(client_id, state, round_idx)

    store.save = save
    runner.train()
    log = _log_text(runner)
    assert 'Round 0: client 1: its update is aggregated, but its local ' \
        'state could not be saved (OSError: No space left' in log
    assert 'retrying' not in log
    assert _history(runner, 'federated/clients_ok') == [3.0]
    assert not _has_state(tmp_path / 'a', 1, 0)
    assert 1 not in store.index
    clean = Runner.from_cfg(
        _cfg(fmnist_root, tmp_path / 'b', [], rounds=1, num_clients=3))
    clean.train()
    a, b = runner.model.state_dict(), clean.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6), k
