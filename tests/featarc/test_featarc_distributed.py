"""FeatARC on 1 and on 2 processes (torchrun, gloo) gives the same clusters."""
import glob
import os
import os.path as osp

import torch

from _helpers.baseline_configs import tiny_cfg
from _helpers.dist import train_one_and_two_processes


def test_featarc_one_vs_two_processes(fmnist_root, tmp_path):
    cfg = tiny_cfg('configs/featarc/mocov2_r18_fmnist_dir0.1.py',
                   fmnist_root, str(tmp_path), rounds=2, num_clients=4,
                   local_iters=1)
    cfg.model.algorithm.queue_len = 32
    cfg.randomness = dict(seed=0, deterministic=True)
    a, b, one, two = train_one_and_two_processes(cfg, tmp_path,
                                                 'epoch_2.pth')
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
    # every client's state (with its features) was written by some rank,
    # in each of the 2 rounds (both checkpoints are kept)
    assert len(glob.glob(osp.join(two, 'client_states', '*.pth'))) == 4 * 2
