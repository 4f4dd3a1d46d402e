"""A real federation on 127.0.0.1: a SuperLink, 2 SuperNodes, `flwr run`;
bounded in time, every process stopped by PID even when the test fails."""
import glob
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch

from _helpers.configs import tiny_federated_cfg

pytest.importorskip('flwr')

from decssl_mm.flower.loopback import LocalFederation  # noqa: E402
from decssl_mm.flower.site_split import split_fmnist_sites  # noqa: E402

CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
#: The whole run's bound (start-up ~5 s, a tiny round well under a minute
#: on a free CPU; loaded CI machines are slower).
RUN_TIMEOUT = 540


def _wait(proc, timeout: float) -> int:
    t0 = time.time()
    while proc.poll() is None:
        if time.time() - t0 > timeout:
            pytest.fail(f'flwr run did not finish within {timeout} s')
        time.sleep(1)
    return proc.returncode


def test_two_sites_pretrain_over_loopback(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path / 'unused'),
                             rounds=2, num_clients=2, local_iters=1)
    path = str(tmp_path / 'shared_cfg.py')
    cfg.dump(path)
    sites = split_fmnist_sites(cfg, str(tmp_path / 'sites'))
    nodes = [{'data-root': d, 'state-dir': str(tmp_path / f'state{k}')}
             for k, d in enumerate(sites)]
    server = str(tmp_path / 'server')
    with LocalFederation(str(tmp_path / 'fed'), nodes) as fed:
        run = fed.run({'config': path, 'work-dir': server, 'resume': False,
                       'round-timeout': 300, 'enrol-timeout': 120},
                      RUN_TIMEOUT)
        rc = _wait(run, RUN_TIMEOUT)
        assert rc == 0, fed.log('run')[-3000:]
    ckpt = osp.join(server, 'epoch_2.pth')
    assert osp.isfile(ckpt), (sorted(glob.glob(server + '/*')),
                              fed.log('run')[-3000:])
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state['federated']['round'] == 2
    assert any(k.startswith('backbone.') for k in state['state_dict'])
    for k in range(2):  # the local state stayed at each site
        assert glob.glob(str(tmp_path / f'state{k}' / 'client_state_r1.pth'))
    # the server's checkpoint is an ordinary one for the downstream tools
    tool = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'model_converters',
        'extract_backbone.py')
    subprocess.run([sys.executable, tool, ckpt,
                    str(tmp_path / 'backbone.pth')], check=True)
    assert osp.isfile(tmp_path / 'backbone.pth')
