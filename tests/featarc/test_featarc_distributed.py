"""FeatARC on 1 and on 2 processes (torchrun, gloo) gives the same clusters."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from _helpers.baseline_configs import tiny_cfg
from _helpers.configs import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    return env


def test_featarc_one_vs_two_processes(fmnist_root, tmp_path):
    # MoCo v2: SimCLR's neck uses SyncBN, which multi-rank CPU runs refuse
    cfg = tiny_cfg('configs/featarc/mocov2_r18_fmnist_dir0.1.py',
                   fmnist_root, str(tmp_path), rounds=2, num_clients=4,
                   local_iters=1)
    cfg.model.algorithm.queue_len = 32
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    py = sys.executable
    subprocess.run([py, osp.join(ROOT, 'tools/train.py'), cfg_path,
                    '--work-dir', one], check=True, env=_env(), timeout=600,
                   cwd=ROOT)
    env = _env()
    env['PORT'] = str(_free_port())
    env['PYTHON'] = py
    subprocess.run(['bash', osp.join(ROOT, 'tools/dist_train.sh'), cfg_path,
                    '2', '--work-dir', two], check=True, env=env,
                   timeout=600, cwd=ROOT)
    a = torch.load(osp.join(one, 'epoch_2.pth'), weights_only=True)
    b = torch.load(osp.join(two, 'epoch_2.pth'), weights_only=True)
    ea, eb = a['federated']['extra'], b['federated']['extra']
    # round 2 assigned by features: same on every rank and as on one
    assert torch.equal(ea['assignment'], eb['assignment'])
    assert ea['chosen'] == eb['chosen']
    for ca, cb in zip(ea['clusters'], eb['clusters']):
        for k, v in ca.items():
            if v.is_floating_point():
                assert torch.allclose(v, cb[k], atol=1e-4, rtol=1e-4), k
            else:
                assert torch.equal(v, cb[k]), k
    for k, v in a['state_dict'].items():
        assert torch.allclose(v.double(), b['state_dict'][k].double(),
                              atol=1e-4, rtol=1e-4), k
    # every client's state (with its features) was written by some rank
    assert len(os.listdir(osp.join(two, 'client_states'))) == 4
