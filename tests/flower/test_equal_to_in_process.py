"""The same config, seeds and client-to-site mapping: over Flower's
message path (ClientApp + ServerApp logic, one process) the global model
equals the in-process loop's, bit for bit."""
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg

pytest.importorskip('flwr')

from _helpers.flower_grid import LocalGrid, local_sites  # noqa: E402
from decssl_mm.flower.client_app import app as client_app  # noqa: E402
from decssl_mm.flower.grid_transport import GridTransport  # noqa: E402
from decssl_mm.flower.server_app import server_runner  # noqa: E402

CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def _tiny(fmnist_root, work_dir, **kw):
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(work_dir), rounds=2,
                             num_clients=3, local_iters=2, **kw)
    cfg.randomness = dict(seed=7)
    return cfg


def _flower_run(cfg, tmp_path, drop=()):
    path, nodes = local_sites(cfg, tmp_path)
    grid = LocalGrid(client_app, nodes, {'config': path}, drop=set(drop))
    runner = server_runner({'config': path, 'resume': False,
                            'work-dir': str(tmp_path / 'server')},
                           GridTransport(grid))
    runner.train()
    return runner


def test_flower_rounds_equal_in_process_rounds(fmnist_root, tmp_path):
    ref = Runner.from_cfg(_tiny(fmnist_root, tmp_path / 'ref'))
    ref.train()
    want = ref.train_loop.global_state
    runner = _flower_run(_tiny(fmnist_root, tmp_path / 'unused'), tmp_path)
    got = runner.train_loop.global_state
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    ckpt = torch.load(osp.join(tmp_path, 'server', 'epoch_2.pth'),
                      map_location='cpu', weights_only=False)
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['federated']['round'] == 2
    for k, v in want.items():
        assert torch.equal(ckpt['state_dict'][k], v), k


class _KilledAfter:
    """A grid whose server dies when round ``round_idx`` is sent."""

    def __init__(self, grid, round_idx):
        self.grid, self.round_idx = grid, str(round_idx)

    def get_node_ids(self):
        return self.grid.get_node_ids()

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        if messages and messages[0].metadata.group_id == self.round_idx:
            raise KeyboardInterrupt('server killed')
        return self.grid.send_and_receive(messages, timeout=timeout)


def test_restarted_server_continues_from_its_checkpoint(fmnist_root,
                                                        tmp_path):
    ref = Runner.from_cfg(_tiny(fmnist_root, tmp_path / 'ref'))
    ref.train()
    cfg = _tiny(fmnist_root, tmp_path / 'unused')
    path, nodes = local_sites(cfg, tmp_path)
    grid = LocalGrid(client_app, nodes, {'config': path})
    rc = {'config': path, 'work-dir': str(tmp_path / 'server')}
    with pytest.raises(KeyboardInterrupt):
        server_runner(rc, GridTransport(_KilledAfter(grid, 1))).train()
    runner = server_runner(rc, GridTransport(grid))  # resume=True
    runner.train()
    got, want = runner.train_loop.global_state, ref.train_loop.global_state
    for k in want:
        assert torch.equal(got[k], want[k]), k
