"""The same config and seed, run twice: the same bits."""
import torch
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg


def _run(work_dir, fmnist_root):
    cfg = tiny_federated_cfg('configs/decssl/simclr_r18_fmnist_dir0.1.py',
                             fmnist_root, str(work_dir), rounds=2,
                             num_clients=3, local_iters=2, num_workers=1)
    cfg.randomness = dict(seed=7)
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    return (runner.train_loop.global_state,
            hub.get_scalar('train/loss').current(),
            runner.train_loop.comm_bytes_total)


def test_same_config_and_seed_give_bitwise_equal_runs(fmnist_root,
                                                      tmp_path):
    a_state, a_loss, a_comm = _run(tmp_path / 'a', fmnist_root)
    b_state, b_loss, b_comm = _run(tmp_path / 'b', fmnist_root)
    assert a_state.keys() == b_state.keys()
    for k, v in a_state.items():
        assert torch.equal(v, b_state[k]), k
    assert a_loss == b_loss and a_comm == b_comm
