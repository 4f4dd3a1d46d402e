"""The federated loop through the real mmengine Runner."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg
from decssl_mm.federated.round_data import client_loader

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
MOCO = 'configs/decssl/mocov2_r18_fmnist_dir0.1.py'


def _run(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_round_trains_every_client_and_stores_state(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(MOCO, fmnist_root, str(tmp_path), rounds=2,
                             num_clients=4)
    runner = _run(cfg)
    loop = runner.train_loop
    # one local iteration count per client per round
    assert loop.iter == 2 * 4 * 2
    # MoCo's queue stays on the clients, on disk, one file per client and
    # kept checkpoint (both rounds' checkpoints are kept here)
    files = glob.glob(osp.join(str(tmp_path), 'client_states', '*.pth'))
    assert len(files) == 4 * 2
    state = _load(files[0])
    assert 'queue' in state['local'] and 'queue_ptr' in state['local']
    # the global model is what the checkpoint holds
    ckpt = _load(osp.join(str(tmp_path), 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2
    sd = runner.model.state_dict()
    for k, v in ckpt['state_dict'].items():
        assert torch.equal(v, sd[k].cpu()), k
    assert ckpt['federated']['round'] == 2
    # communication: 2 rounds x 4 clients x (down + up) x exchanged bytes
    assert loop.comm_bytes_total == 2 * 4 * 2 * loop.exchanged_bytes
    exchanged = sum(sd[k].numel() * sd[k].element_size()
                    for k in loop.exchanged_keys)
    assert loop.exchanged_bytes == exchanged
    assert not any('queue' in k for k in loop.exchanged_keys)
    hub = runner.message_hub
    assert hub.get_scalar('train/comm/bytes_total').current() == \
        loop.comm_bytes_total


def test_global_model_is_weighted_mean_of_clients(fmnist_root, tmp_path):
    """One round by hand: train each client from the global model alone."""
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'fed'),
                             rounds=1, num_clients=3, local_iters=1)
    cfg.randomness = dict(seed=0, deterministic=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    fed = {k: v.clone() for k, v in runner.model.state_dict().items()}

    # replay: each client alone, from the same initial weights
    cfg2 = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'solo'),
                              rounds=1, num_clients=3, local_iters=1)
    cfg2.randomness = dict(seed=0, deterministic=True)
    sizes = loop.client_sizes
    acc = None
    for k in range(3):
        r2 = Runner.from_cfg(cfg2.copy())
        r2._train_loop = r2.build_train_loop(r2._train_loop)
        r2.optim_wrapper = r2.build_optim_wrapper(r2.optim_wrapper)
        r2.param_schedulers = r2.build_param_scheduler(r2.param_schedulers)
        r2.call_hook('before_run')
        r2._init_model_weights()
        l2 = r2.train_loop
        l2._setup()
        l2.server.begin_round(0, [k])
        r2.call_hook('before_train_epoch')
        l2.clients.exchange(
            k, 0, client_loader(l2.dataloader, l2.client_batches(k, 0)))
        sd = r2.model.state_dict()
        w = sizes[k] / sizes.sum()
        part = {n: sd[n].double() * w for n in loop.exchanged_keys
                if sd[n].is_floating_point()}
        acc = part if acc is None else {n: acc[n] + part[n] for n in acc}
    for n, v in acc.items():
        assert torch.allclose(fed[n].double(), v, atol=1e-5), n


def test_participation_and_fedbn(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(
        SIMCLR, fmnist_root, str(tmp_path), rounds=2, num_clients=5,
        local_iters=1,
        extra={
            'train_cfg.participation': 0.4,
            'train_cfg.aggregator': dict(
                type='FedAvg', exclude=[r'\.bn\d*\.', r'downsample\.1\.']),
        })
    runner = _run(cfg)
    loop = runner.train_loop
    assert loop.clients_per_round == 2
    assert loop.iter == 2 * 2  # 2 rounds x 2 clients x 1 iteration
    bn_keys = [k for k in runner.model.state_dict()
               if '.bn1.' in k and 'backbone.layer1' in k]
    assert bn_keys and not set(bn_keys) & set(loop.exchanged_keys)
    files = glob.glob(osp.join(str(tmp_path), 'client_states', '*.pth'))
    assert 2 <= len(files) <= 4
    st = _load(files[0])
    assert set(bn_keys) <= set(st['local'])


def test_optimizer_state_kept_per_client(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path), rounds=1,
                             num_clients=2, local_iters=1,
                             extra={'train_cfg.optimizer_policy': 'keep'})
    _run(cfg)
    st = _load(glob.glob(osp.join(str(tmp_path), 'client_states',
                                  '*.pth'))[0])
    assert st['optimizer'] and all('momentum_buffer' in s
                                   for s in st['optimizer'].values())


@pytest.mark.parametrize('extra,exc,match', [
    ({'train_cfg.participation': 0.0}, ValueError, 'participation'),
    ({'train_cfg.participation': 1.2}, ValueError, 'participation'),
    ({'train_cfg.clients_per_round': 9}, ValueError, 'clients_per_round'),
    ({'train_cfg.local_epochs': 1}, ValueError, 'exactly one'),
    ({'train_cfg.rounds': 0}, ValueError, 'rounds'),
    ({'train_cfg.aggregator': dict(type='FedAvg', exclude=['nope'])},
     ValueError, 'matches no key'),
    ({'train_cfg.aggregator': dict(type='FedMagic')}, KeyError,
     'registered'),
])
def test_bad_input_fails_before_training(fmnist_root, tmp_path, extra, exc,
                                         match):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path), extra=extra)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(exc, match=match):
        runner.train()
    # nothing trained, nothing written
    assert not glob.glob(osp.join(str(tmp_path), '*.pth'))
    assert not glob.glob(osp.join(str(tmp_path), 'client_states', '*'))


def test_dataset_must_be_client_partitioned(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_dataloader.dataset = cfg.train_dataloader.dataset.dataset
    runner = Runner.from_cfg(cfg)
    with pytest.raises(TypeError, match='ClientPartitionedDataset'):
        runner.train()


def test_iteration_based_scheduler_rejected(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.param_scheduler = [dict(type='LinearLR', by_epoch=False, begin=0,
                                end=5)]
    with pytest.raises(ValueError, match='by_epoch'):
        Runner.from_cfg(cfg).train()


def test_resume_equals_uninterrupted(fmnist_root, tmp_path):
    def cfg_for(d, rounds):
        c = tiny_federated_cfg(MOCO, fmnist_root, str(d), rounds=rounds,
                               num_clients=3, local_iters=2,
                               extra={'train_cfg.participation': 0.67})
        c.randomness = dict(seed=1, deterministic=True)
        c.param_scheduler = [dict(type='CosineAnnealingLR', T_max=3,
                                  by_epoch=True, begin=0, end=3)]
        return c

    straight = _run(cfg_for(tmp_path / 'a', 3))
    _run(cfg_for(tmp_path / 'b', 2))
    cfg = cfg_for(tmp_path / 'b', 3)
    cfg.resume = True
    cfg.load_from = str(tmp_path / 'b' / 'epoch_2.pth')
    resumed = _run(cfg)
    assert resumed.train_loop.epoch == 3
    a = straight.model.state_dict()
    b = resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6), k
    # client-local state (MoCo queues) match too
    states = tmp_path / 'a' / 'client_states'
    for f in sorted(glob.glob(str(states / '*.pth'))):
        g = osp.join(str(tmp_path / 'b' / 'client_states'), osp.basename(f))
        assert torch.allclose(_load(f)['local']['queue'],
                              _load(g)['local']['queue'], atol=1e-6)
    assert straight.train_loop.comm_bytes_total == \
        resumed.train_loop.comm_bytes_total


def test_state_store_stays_bounded(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(
        MOCO, fmnist_root, str(tmp_path), rounds=4, num_clients=3,
        local_iters=1, extra={'default_hooks.checkpoint.max_keep_ckpts': 1})
    runner = _run(cfg)
    files = glob.glob(osp.join(str(tmp_path), 'client_states', '*.pth'))
    assert len(files) == 3  # one version per client, old ones removed
    assert runner.train_loop.store.num_files() == 3


def test_no_state_file_for_a_client_that_keeps_nothing(fmnist_root,
                                                       tmp_path):
    # SimCLR under FedAvg with optimizer_policy='reset': nothing stays on
    # the client, so nothing is written; with skip_empty=False every
    # client gets its (empty) file as before.
    skipped = _run(tiny_federated_cfg(SIMCLR, fmnist_root,
                                      str(tmp_path / 'a'), rounds=2,
                                      num_clients=3, local_iters=1))
    assert skipped.train_loop.store.num_files() == 0
    assert skipped.train_loop.store.index == {}
    assert skipped.train_loop.iter == 2 * 3
    runner = _run(tiny_federated_cfg(
        SIMCLR, fmnist_root, str(tmp_path / 'b'), rounds=2, num_clients=3,
        local_iters=1, extra={'train_cfg.client_state': dict(
            type='DiskClientStateStore', skip_empty=False)}))
    assert runner.train_loop.store.index == {0: 1, 1: 1, 2: 1}
    st = _load(glob.glob(osp.join(str(tmp_path / 'b'), 'client_states',
                                  '*.pth'))[0])
    assert st == {'local': {}}
    # ... and the same global model either way
    a, b = skipped.model.state_dict(), runner.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_augmentation_is_a_function_of_sample_seed(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    ds = runner.train_loop.dataset
    a = ds[(5, 1234)]['inputs'][0]
    np.random.seed(0)
    torch.manual_seed(99)
    b = ds[(5, 1234)]['inputs'][0]
    c = ds[(5, 999)]['inputs'][0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_store_skips_only_empty_states_of_clients_without_a_version(
        tmp_path):
    from decssl_mm.federated.client_state import (DiskClientStateStore,
                                                  holds_nothing)
    assert holds_nothing({'local': {}})
    assert holds_nothing({'local': {}, 'fedema': {'lambda': None}})
    assert not holds_nothing({'local': {'q': torch.zeros(1)}})
    assert not holds_nothing({'fedema': {'lambda': 0.0}})
    assert not holds_nothing({'optimizer': {0: {'step': 1}}})
    store = DiskClientStateStore()
    store.setup(str(tmp_path))
    assert not store.needs_save(3, {'local': {}})
    assert store.needs_save(3, {'local': {'q': torch.zeros(1)}})
    store.save(3, {'local': {'q': torch.zeros(1)}}, 0)
    # a client with an earlier version gets its new one, even if empty
    assert store.needs_save(3, {'local': {}})
    assert DiskClientStateStore(skip_empty=False).needs_save(4, {})


def test_write_behind_store_equals_synchronous_writes(fmnist_root, tmp_path,
                                                      monkeypatch):
    def cfg(d, **store):
        c = tiny_federated_cfg(MOCO, fmnist_root, str(tmp_path / d),
                               rounds=2, num_clients=3, local_iters=1,
                               extra={'train_cfg.client_state': dict(
                                   type='DiskClientStateStore', **store)})
        c.randomness = dict(seed=0, deterministic=True)
        return c

    sync = _run(cfg('a'))
    behind = _run(cfg('b', write_behind=True))
    assert behind.train_loop.store.index == sync.train_loop.store.index
    names = sorted(osp.basename(p) for p in glob.glob(
        str(tmp_path / 'a' / 'client_states' / '*.pth')))
    assert names and names == sorted(osp.basename(p) for p in glob.glob(
        str(tmp_path / 'b' / 'client_states' / '*.pth')))
    for n in names:
        qa = _load(str(tmp_path / 'a' / 'client_states' / n))
        qb = _load(str(tmp_path / 'b' / 'client_states' / n))
        assert torch.equal(qa['local']['queue'], qb['local']['queue'])
    a, b = sync.model.state_dict(), behind.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # a failed background write: aggregated, previous state kept, logged
    import decssl_mm.federated.client_state as cs
    real = cs.atomic_torch_save

    def failing(obj, path):
        if 'client_000001.r000001' in path:
            raise OSError('No space left on device')
        return real(obj, path)

    monkeypatch.setattr(cs, 'atomic_torch_save', failing)
    runner = _run(cfg('c', write_behind=True))
    assert runner.train_loop.store.index == {0: 1, 1: 0, 2: 1}
    assert runner.message_hub.get_scalar(
        'train/federated/clients_ok').current() == 3
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        assert 'Round 1: client 1: its update is aggregated, but its local ' \
            'state could not be saved (OSError: No space left' in f.read()
