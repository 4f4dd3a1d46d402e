"""A SuperNode killed mid-round on 127.0.0.1 (3 SuperNodes, `flwr run`):
the round goes on with the others when ``min-results`` allows, otherwise
the run stops with an error naming the site, within the round timeout;
never a hang, and every process stopped by PID even when a test fails."""
import os.path as osp
import time

import pytest

from _helpers.configs import tiny_federated_cfg

pytest.importorskip('flwr')
psutil = pytest.importorskip('psutil')

from decssl_mm.flower.grid_transport import NODE_GONE_AFTER  # noqa: E402
from decssl_mm.flower.loopback import LocalFederation  # noqa: E402
from decssl_mm.flower.site_split import split_fmnist_sites  # noqa: E402

CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
#: Seconds the server waits for a round. The SuperLink holds a killed
#: SuperNode offline at most ``NODE_GONE_AFTER`` (60 s) after its last
#: heartbeat, and the round returns then; the timeout is the bound.
ROUND_TIMEOUT = 90
#: Seconds to wait for the first round's task to reach the doomed node
#: (start-up: SuperLink, SuperNodes, ServerApp, enrolment; slow on a
#: loaded machine).
FIRST_TASK_TIMEOUT = 600
#: The site whose SuperNode is killed.
VICTIM = 2


def _wait_for(fed, what: str, name: str, run, timeout: float) -> None:
    t0 = time.time()
    while what not in fed.log(name):
        if run.poll() is not None:
            pytest.fail(f'flwr run ended before {name} logged {what!r}:\n' +
                        fed.log('run')[-3000:])
        if time.time() - t0 > timeout:
            pytest.fail(f'{name} did not log {what!r} within {timeout} s')
        time.sleep(0.5)


def _wait(proc, timeout: float) -> float:
    """Seconds until ``proc`` ended; fails the test past ``timeout``."""
    t0 = time.time()
    while proc.poll() is None:
        if time.time() - t0 > timeout:
            pytest.fail(f'flwr run did not finish within {timeout} s')
        time.sleep(0.5)
    return time.time() - t0


def _alive(pids) -> list:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _kill_mid_round(fed, victim: int, run_config: dict) -> tuple:
    """``flwr run`` with ``run_config``; SIGKILL SuperNode ``victim`` and
    its app processes once the first round's task reached it. Returns
    ``(seconds from the kill to the end of flwr run, run log, run status,
    PIDs killed)``."""
    run = fed.run(run_config, 0)
    _wait_for(fed, 'Receiving: train message', f'supernode{victim}', run,
              FIRST_TASK_TIMEOUT)
    killed = fed.kill_node(victim)
    # 2 rounds, each within the round timeout (+ pushing and pulling the
    # tasks, slow on a loaded machine), + the end of the run: never a hang
    took = _wait(run, 2 * ROUND_TIMEOUT + 240)
    return took, fed.log('run'), fed.run_status(), killed


def test_supernode_killed_mid_round(fmnist_root, tmp_path):
    """(a) ``min-results=2``: the round ends with the two others once the
    SuperLink holds the node offline, round 2 leaves the site out before
    sending, the run finishes. (b) The site's SuperNode restarted, a new
    run with ``min-results=3``: the run stops with an error naming the
    round and the site, before the round timeout. One federation for
    both (its start-up is most of the time)."""
    assert NODE_GONE_AFTER < ROUND_TIMEOUT
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path / 'unused'),
                             rounds=2, num_clients=3, local_iters=1)
    path = str(tmp_path / 'shared_cfg.py')
    cfg.dump(path)
    sites = split_fmnist_sites(cfg, str(tmp_path / 'sites'))
    nodes = [{'data-root': d, 'site-id': k,
              'state-dir': str(tmp_path / f'state{k}')}
             for k, d in enumerate(sites)]
    run_config = {'config': path, 'resume': False, 'enrol-timeout': 180,
                  'round-timeout': ROUND_TIMEOUT}
    pids = []
    with LocalFederation(str(tmp_path / 'fed'), nodes) as fed:
        server = str(tmp_path / 'server_a')
        took, log, status, killed = _kill_mid_round(
            fed, VICTIM, dict(run_config, **{'work-dir': server,
                                             'min-results': 2}))
        pids += killed
        assert status == 'finished:completed', (status, log[-4000:])
        assert osp.isfile(osp.join(server, 'epoch_2.pth')), log[-4000:]
        left_out = f'Round 1/2: site {VICTIM} (node '
        assert left_out in log and 'its node is offline' in log, log[-4000:]
        assert (f'Round 2/2: site {VICTIM} (node ' in log and
                'left out, no task sent: its node is not connected' in log
                ), log[-4000:]

        fed.nodes[VICTIM] = fed.start_node(VICTIM, nodes[VICTIM])
        took, log, status, killed = _kill_mid_round(
            fed, VICTIM, dict(run_config, **{
                'work-dir': str(tmp_path / 'server_b'), 'min-results': 3}))
        pids += killed
        assert status == 'finished:failed', (status, log[-4000:])
        assert ('Round 1/2: 2 result(s) admitted, fewer than min-results=3;'
                f' missing: site {VICTIM} (node ') in log, log[-4000:]
        # the SuperLink answered for the dead node: no round timeout waited
        assert 'its node is offline' in log.split('fewer than')[-1]
        # one round timeout + pulling the replies and ending the run
        assert took < ROUND_TIMEOUT + 90, log[-4000:]
        pids += [p.pid for p in fed.procs] + fed._descendants()
    assert not _alive(pids), 'processes left behind'
