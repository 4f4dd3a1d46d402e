"""``kill -9`` of a real training process, then ``--resume``.

Each scenario starts ``tools/train.py`` on a dumped tiny config, freezes it
at a chosen instant (mid-round, half-way through a checkpoint write, between
the checkpoint file and the ``last_checkpoint`` pointer), kills it with
SIGKILL from the test, resumes with ``--resume`` and compares the final
global model and client states with an uninterrupted run.
"""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner import Runner

from _helpers.configs import ROOT, tiny_federated_cfg
from _helpers.reliability import KILL_ENV, READY_FILE

MOCO = 'configs/decssl/mocov2_r18_fmnist_dir0.1.py'
ROUNDS = 3


def _env(kill_at=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT, osp.join(ROOT, 'tests'),
         env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    return env


def _train_cmd(cfg_path, work_dir, *extra):
    return [sys.executable, osp.join(ROOT, 'tools/train.py'), cfg_path,
            '--work-dir', work_dir, *extra]


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def crash_cfg(fmnist_root, tmp_path_factory):
    """Tiny MoCo run (client-local queues), 2 of 4 clients per round."""
    d = tmp_path_factory.mktemp('crash')
    cfg = tiny_federated_cfg(
        MOCO, fmnist_root, str(d / 'unused'), rounds=ROUNDS, num_clients=4,
        local_iters=2,
        extra={'train_cfg.participation': 0.5,
               'default_hooks.checkpoint.max_keep_ckpts': 2})
    cfg.randomness = dict(seed=3, deterministic=True)
    cfg.custom_imports = dict(
        imports=['decssl_mm', '_helpers.reliability'],
        allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='KillPointHook')]
    path = str(d / 'cfg.py')
    cfg.dump(path)
    ref = str(d / 'reference')
    subprocess.run(_train_cmd(path, ref), check=True, env=_env(),
                   timeout=900, cwd=ROOT)
    return path, ref


def _run_and_kill(cfg_path, work_dir, kill_at, timeout=600):
    proc = subprocess.Popen(_train_cmd(cfg_path, work_dir), env=_env(kill_at),
                            cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ready = osp.join(work_dir, READY_FILE)
    t0 = time.time()
    try:
        while not osp.exists(ready):
            if proc.poll() is not None:
                raise AssertionError('training ended before the kill point: '
                                     + proc.stderr.read().decode()[-3000:])
            if time.time() - t0 > timeout:
                raise AssertionError('kill point not reached in time')
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    os.remove(ready)


def _pointer(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def _client_states(work_dir):
    return sorted(
        osp.basename(p)
        for p in glob.glob(osp.join(work_dir, 'client_states', '*.pth')))


@pytest.mark.parametrize('kill_at,expect_pointer', [
    ('mid_round:1:3', 'epoch_1.pth'),       # 2nd client of round 1
    ('mid_checkpoint:2', 'epoch_1.pth'),    # epoch_2.pth half written
    ('before_pointer:2', 'epoch_1.pth'),    # epoch_2.pth done, pointer not
])
def test_kill9_then_resume_equals_uninterrupted(crash_cfg, tmp_path, kill_at,
                                                expect_pointer):
    cfg_path, ref = crash_cfg
    work = str(tmp_path / 'run')
    _run_and_kill(cfg_path, work, kill_at)

    # what a resume finds: the pointer names a complete checkpoint
    pointer = _pointer(work)
    assert osp.basename(pointer) == expect_pointer
    ckpt = _load(pointer)
    assert 'federated' in ckpt and ckpt['meta']['epoch'] == 1
    if kill_at.startswith('mid_checkpoint'):
        assert not osp.exists(osp.join(work, 'epoch_2.pth'))
        assert glob.glob(osp.join(work, '.epoch_2.pth*.tmp'))  # torn temp
    # every client state the checkpoint refers to is on disk
    index = ckpt['federated']['client_states']
    for k, r in zip(index['clients'].tolist(), index['rounds'].tolist()):
        assert osp.isfile(osp.join(work, 'client_states',
                                   f'client_{k:06d}.r{r:06d}.pth')), (k, r)

    subprocess.run(_train_cmd(cfg_path, work, '--resume'), check=True,
                   env=_env(), timeout=900, cwd=ROOT)

    a = _load(osp.join(ref, f'epoch_{ROUNDS}.pth'))
    b = _load(osp.join(work, f'epoch_{ROUNDS}.pth'))
    assert a['meta']['epoch'] == b['meta']['epoch'] == ROUNDS
    for k, v in a['state_dict'].items():
        w = b['state_dict'][k]
        if v.is_floating_point():
            assert torch.allclose(v, w, atol=1e-6), k
        else:
            assert torch.equal(v, w), k
    # same client states (MoCo queues), no leftovers of the killed round
    assert _client_states(work) == _client_states(ref)
    for name in _client_states(ref):
        qa = _load(osp.join(ref, 'client_states', name))['local']['queue']
        qb = _load(osp.join(work, 'client_states', name))['local']['queue']
        assert torch.allclose(qa, qb, atol=1e-6), name
    assert not glob.glob(osp.join(work, 'client_states', '*.tmp'))
    assert a['federated']['comm_bytes_total'] == \
        b['federated']['comm_bytes_total']
    # the torn temp file of a killed checkpoint write was cleaned up
    assert not glob.glob(osp.join(work, '.*.tmp'))


def test_fresh_start_clears_states_of_a_killed_run(fmnist_root, tmp_path):
    """Killed before the first checkpoint: --resume starts afresh and the
    client states left behind are removed, not mixed with the new ones."""
    states = tmp_path / 'client_states'
    states.mkdir()
    stale = ['client_000003.r000000.pth', '.client_000001.r000000.pthx.tmp',
             'client_000099.r000007.pth']
    for name in stale:
        (states / name).write_bytes(b'left by a killed run')
    cfg = tiny_federated_cfg(
        'configs/decssl/simclr_r18_fmnist_dir0.1.py', fmnist_root,
        str(tmp_path), rounds=1, num_clients=2, local_iters=1,
        extra={'train_cfg.client_state': dict(type='DiskClientStateStore',
                                              skip_empty=False)})
    cfg.resume = True  # no checkpoint in the work dir: a fresh start
    Runner.from_cfg(cfg).train()
    assert _client_states(str(tmp_path)) == [
        'client_000000.r000000.pth', 'client_000001.r000000.pth'
    ]
