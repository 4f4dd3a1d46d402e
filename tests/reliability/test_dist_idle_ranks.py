"""More ranks than clients per round: the extra rank idles, nothing hangs."""
import glob
import os
import os.path as osp
import socket
import subprocess
import sys

import torch
from mmengine.runner import Runner

from _helpers.configs import ROOT, tiny_federated_cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _cfg(fmnist_root, work_dir, aggregator):
    # MoCo, as in tests/federated/test_distributed.py
    cfg = tiny_federated_cfg(
        'configs/decssl/mocov2_r18_fmnist_dir0.1.py', fmnist_root,
        str(work_dir), rounds=2, num_clients=3, local_iters=2,
        extra={'train_cfg.clients_per_round': 1,
               'train_cfg.aggregator': aggregator})
    cfg.randomness = dict(seed=0, deterministic=True)
    return cfg


def test_two_ranks_one_client_per_round(fmnist_root, tmp_path):
    """Rank 1 never has a client (FedAvg's all-reduce and the median's
    all-gather of updates both see an empty rank); the run ends as the
    single-process run does."""
    aggregators = {'fedavg': dict(type='FedAvg'),
                   'median': dict(type='CoordinateMedian', chunk_size=5000)}
    for name, agg in aggregators.items():
        cfg = _cfg(fmnist_root, tmp_path / f'{name}_cfg', agg)
        cfg_path = str(tmp_path / f'{name}.py')
        cfg.dump(cfg_path)
        two = str(tmp_path / f'{name}_two')
        env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable,
                   OMP_NUM_THREADS='1')
        # a hang would hit the timeout
        out = subprocess.run(
            ['bash', osp.join(ROOT, 'tools/dist_train.sh'), cfg_path, '2',
             '--work-dir', two], env=env, cwd=ROOT, timeout=400,
            capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]

        single = Runner.from_cfg(_cfg(fmnist_root, tmp_path / f'{name}_one',
                                      agg))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as each of the two processes
        try:
            single.train()
        finally:
            torch.set_num_threads(threads)
        a = single.model.state_dict()
        b = torch.load(osp.join(two, 'epoch_2.pth'),
                       weights_only=True)['state_dict']
        for k, v in a.items():
            if v.is_floating_point():
                assert torch.allclose(v, b[k], atol=1e-4, rtol=1e-4), k
            else:
                assert torch.equal(v, b[k]), k
        # one client per round, its state written by rank 0
        assert len(glob.glob(osp.join(two, 'client_states', '*.pth'))) <= 2
