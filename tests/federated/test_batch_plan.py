"""How a client's local work is cut into batches."""
import numpy as np
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg

from decssl_mm.federated.batch_plan import epoch_batches, num_epoch_batches

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def _loop(fmnist_root, tmp_path, **kw):
    extra = kw.pop('extra', None)
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path), extra=extra,
                             **kw)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    return runner.train_loop


def test_local_epochs_cover_each_sample_once_per_epoch(fmnist_root,
                                                       tmp_path):
    loop = _loop(fmnist_root, tmp_path, local_iters=None, local_epochs=2,
                 batch_size=8, num_clients=3)
    for k in range(3):
        batches = loop.client_batches(k, round_idx=0)
        idx = [i for b in batches for i, _ in b]
        own = set(loop.dataset.client_indices(k).tolist())
        assert set(idx) == own
        n = len(own)
        assert len(idx) == 2 * n - 2 * int(n % 8 == 1)
        assert len(batches) == loop.planner.num_client_batches(n)
        assert all(len(b) > 1 for b in batches)


def test_plan_is_a_function_of_seed_round_client(fmnist_root, tmp_path):
    loop = _loop(fmnist_root, tmp_path, local_iters=3, batch_size=4)
    a = loop.client_batches(1, 5)
    assert a == loop.client_batches(1, 5)
    assert a != loop.client_batches(1, 6)
    assert len(a) == 3 and all(len(b) == 4 for b in a)
    seeds = [s for b in a for _, s in b]
    assert len(set(seeds)) == len(seeds)


def test_drop_last_gives_full_batches_even_for_tiny_clients(fmnist_root,
                                                             tmp_path):
    loop = _loop(fmnist_root, tmp_path, local_iters=None, local_epochs=1,
                 batch_size=8,
                 extra={'train_dataloader.drop_last': True})
    assert loop.batch_sampler.drop_last
    perm = np.arange(20)
    assert [len(b) for b in epoch_batches(perm, 8, True)] == [8, 8]
    tiny = epoch_batches(np.arange(3), 8, True)
    assert len(tiny) == 1 and len(tiny[0]) == 8
    assert set(tiny[0].tolist()) == {0, 1, 2}


def test_one_sample_client_trains_on_it_twice():
    assert [b.tolist() for b in epoch_batches(np.array([7]), 8, False)] == \
        [[7, 7]]
    assert num_epoch_batches(1, 8, False) == 1
    # a trailing single sample is dropped when there are other batches
    assert [len(b) for b in epoch_batches(np.arange(9), 8, False)] == [8]
    assert num_epoch_batches(9, 8, False) == 1
