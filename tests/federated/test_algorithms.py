"""Every mmpretrain self-supervised algorithm runs federated by config."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg

ALGORITHMS = ['mocov2', 'simclr', 'byol', 'simsiam', 'mocov3', 'barlowtwins',
              'densecl', 'swav']


@pytest.mark.parametrize('algo', ALGORITHMS)
def test_one_round(algo, fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(f'configs/decssl/{algo}_r18_fmnist_dir0.1.py',
                             fmnist_root, str(tmp_path), rounds=1,
                             num_clients=2, local_iters=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    assert loop.iter == 2  # 2 clients x 1 local iteration
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)), f'{algo}: loss {loss}'
    assert any('backbone' in k for k in loop.exchanged_keys)
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))
    # a file per client only where something stays on the client (queues)
    local = set(runner.model.state_dict()) - set(loop.exchanged_keys)
    assert bool(local) == (algo in ('mocov2', 'densecl'))
    assert len(glob.glob(osp.join(str(tmp_path), 'client_states',
                                  '*.pth'))) == (2 if local else 0)
