"""A transform that kills its dataloader worker costs its client only.

Through the real Runner and config path: the tiny SimCLR run with three
clients, two local iterations each and ``num_workers=2`` (persistent
workers, so the round's one DataLoader prefetches across client
boundaries). ``KillWorkerOnSample`` ends the worker process that loads one
chosen sample. The run must finish; the client whose batch held the sample
fails with the worker error; every other client trains on exactly the
batches of an undisturbed round, so the global model is bitwise the one of
a run in which the same client fails by raising.
"""
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

import _helpers.reliability  # noqa: F401  (registers the test parts)
from _helpers.configs import tiny_federated_cfg
from _helpers.reliability import KillWorkerOnSample

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
ROUNDS = 2


def _cfg(fmnist_root, work_dir, retries=0, faults=None):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(work_dir),
                             rounds=ROUNDS, num_clients=3, local_iters=2,
                             num_workers=2)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.train_dataloader.dataset.dataset.pipeline.insert(
        0, dict(type='KillWorkerOnSample'))
    cfg.train_cfg.client_retries = retries
    if faults:
        cfg.custom_hooks = [dict(type='ClientFaultHook', faults=faults)]
    return cfg


def _order(loop):
    """The clients of round 0 in training order."""
    return [int(k) for k in loop.planner.my_clients(
        loop.client_sampler.sample(0, loop.client_sizes))]


def _doom(loop, client, which):
    """Make the first sample of a client's first or last batch (in both
    rounds) kill the worker that loads it."""
    samples = set()
    for r in range(ROUNDS):
        batches = loop.client_batches(client, r)
        samples.add(int(batches[0 if which == 'first' else -1][0][0]))
    kill = [t for t in loop.dataset.dataset.pipeline.transforms
            if isinstance(t, KillWorkerOnSample)]
    assert len(kill) == 1
    kill[0].samples = samples


def _history(runner, key):
    return list(runner.message_hub.get_scalar(f'train/{key}').data[0])


def _log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


_REFERENCE = {}


def _reference(fmnist_root, tmp_path_factory, failing):
    """Global model of the run in which client ``failing`` fails by raising
    at its first iteration in every round (no worker dies)."""
    if failing not in _REFERENCE:
        work_dir = tmp_path_factory.mktemp(f'ref{failing}')
        runner = Runner.from_cfg(_cfg(
            fmnist_root, work_dir,
            faults=[dict(client=failing, kind='raise', round=None)]))
        runner.train()
        assert _history(runner, 'federated/clients_ok') == [2.0] * ROUNDS
        _REFERENCE[failing] = runner.train_loop.global_state
    return _REFERENCE[failing]


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


@pytest.mark.parametrize('position,which', [
    (0, 'first'),  # the round's first batch
    (0, 'last'),   # the first client's last batch: workers prefetch past it
    (1, 'first'),  # prefetched while the first client still trains
])
def test_dead_worker_costs_its_client_only(fmnist_root, tmp_path,
                                           tmp_path_factory, position,
                                           which):
    runner = Runner.from_cfg(_cfg(fmnist_root, tmp_path))
    loop = runner.train_loop
    assert loop.dataloader.timeout == 300  # no unbounded wait for a worker
    culprit = _order(loop)[position]
    _doom(loop, culprit, which)
    runner.train()  # finishes
    assert loop.epoch == ROUNDS
    assert _history(runner, 'federated/clients_ok') == [2.0] * ROUNDS
    assert _history(runner, 'federated/clients_failed') == [1.0] * ROUNDS
    errors = loop.clients.round_errors
    assert list(errors) == [culprit]
    assert 'DataLoader worker' in errors[culprit]
    log = _log_text(runner)
    for r in range(ROUNDS):
        assert f'Round {r}: client {culprit} failed' in log
    assert log.count(' failed (attempt') == ROUNDS
    # the others trained on exactly their batches: the global model is
    # the one of a run in which the culprit fails by raising
    _assert_same_state(loop.global_state,
                       _reference(fmnist_root, tmp_path_factory, culprit))


def test_retry_reads_through_new_workers(fmnist_root, tmp_path,
                                         tmp_path_factory):
    """A retry rebuilds the loader with workers: the sample kills a worker
    again (a single-process retry would pass, or die with the run)."""
    runner = Runner.from_cfg(_cfg(fmnist_root, tmp_path, retries=1))
    loop = runner.train_loop
    culprit = _order(loop)[0]
    _doom(loop, culprit, 'first')
    runner.train()
    assert _history(runner, 'federated/clients_ok') == [2.0] * ROUNDS
    log = _log_text(runner)
    for r in range(ROUNDS):
        assert f'Round {r}: client {culprit} failed (attempt 1/2' in log
        assert f'Round {r}: client {culprit} failed (attempt 2/2' in log
    assert log.count(' failed (attempt') == 2 * ROUNDS
    assert 'DataLoader worker' in loop.clients.round_errors[culprit]
    _assert_same_state(loop.global_state,
                       _reference(fmnist_root, tmp_path_factory, culprit))
