"""A one-client federated run is plain mmengine training."""
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from _helpers.baseline_configs import tiny_cfg

FED = 'configs/baselines/centralized_ssl/simclr_r18_fmnist_central.py'
PLAIN = 'configs/baselines/centralized_ssl/simclr_r18_fmnist_central_plain.py'


def _cfg(config, work_dir, root, rounds, batch_size):
    cfg = tiny_cfg(config, root, str(work_dir), rounds=rounds,
                   local_iters=None, local_epochs=1, batch_size=batch_size)
    cfg.randomness = dict(seed=0, deterministic=True)
    return cfg


@pytest.mark.parametrize('batch_size,drop_last', [(8, False), (7, False),
                                                  (7, True), (256, True)])
def test_sampler_reproduces_the_loop_plan(fmnist_root, tmp_path, batch_size,
                                          drop_last):
    """Same (index, seed) batches as client 0 of the federated loop."""
    fed_cfg = _cfg(FED, tmp_path / 'f', fmnist_root, 3, batch_size)
    fed_cfg.train_dataloader.drop_last = drop_last
    fed = Runner.from_cfg(fed_cfg)
    fed._train_loop = fed.build_train_loop(fed._train_loop)
    plain_cfg = _cfg(PLAIN, tmp_path / 'p', fmnist_root, 3, batch_size)
    plain_cfg.train_dataloader.batch_sampler.drop_last = drop_last
    plain = Runner.from_cfg(plain_cfg)
    loader = plain.build_dataloader(plain._train_dataloader, seed=plain.seed)
    bs = loader.batch_sampler
    for r in range(3):
        loader.batch_sampler.sampler.set_epoch(r)  # as DistSamplerSeedHook
        want = fed.train_loop.client_batches(0, r)
        got = list(bs)
        assert got == want
        assert len(bs) == len(want)
    # 120 samples: batch 7 leaves one sample, which both drop; drop_last
    # keeps full batches only; a batch larger than the data repeats it
    n_batches = {(8, False): 15, (7, False): 17, (7, True): 17,
                 (256, True): 1}[(batch_size, drop_last)]
    assert len(want) == n_batches
    if drop_last:
        assert all(len(b) == batch_size for b in want)


def test_one_client_federated_equals_plain_training(fmnist_root, tmp_path):
    fed = Runner.from_cfg(_cfg(FED, tmp_path / 'fed', fmnist_root, 2, 8))
    fed.train()
    plain = Runner.from_cfg(_cfg(PLAIN, tmp_path / 'plain', fmnist_root, 2,
                                 8))
    plain.train()
    assert fed.train_loop.iter == plain.train_loop.iter == 2 * 15
    a, b = fed.model.state_dict(), plain.model.state_dict()
    assert list(a) == list(b)
    moved = 0
    init = torch.load(str(tmp_path / 'fed' / 'epoch_1.pth'),
                      weights_only=True)['state_dict']
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), (
                k, float((a[k] - b[k]).abs().max()))
            moved += int(not torch.equal(a[k], init[k]))
        else:
            assert torch.equal(a[k], b[k]), k
    assert moved > 10  # round 2 did train
    lr_fed = fed.optim_wrapper.get_lr()['lr'][0]
    lr_plain = plain.optim_wrapper.get_lr()['lr'][0]
    assert np.isclose(lr_fed, lr_plain)
