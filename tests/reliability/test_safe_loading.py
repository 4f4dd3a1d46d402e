"""Files carrying pickled code are refused, and the code never runs."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg
from _helpers.payload import CodePayload

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


@pytest.fixture
def evil(tmp_path):
    """``make(name, **entries)`` writes a checkpoint-looking file whose
    unpickling would create ``tmp_path/PWNED``."""
    marker = str(tmp_path / 'PWNED')

    def make(name, **entries):
        path = str(tmp_path / name)
        obj = dict(meta=dict(epoch=1), state_dict={'w': torch.ones(2)},
                   payload=CodePayload(marker))
        obj.update(entries)
        torch.save(obj, path)
        return path

    yield make
    assert not osp.exists(marker), 'the pickled callable was executed'


def test_resume_refuses_pickled_code(fmnist_root, tmp_path, evil):
    """``--resume PATH`` and ``--resume`` (via ``last_checkpoint``)."""
    path = evil('epoch_1.pth')
    work = tmp_path / 'work'
    for load_from in (path, None):
        cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(work))
        cfg.resume = True  # what tools/train.py --resume [PATH] sets
        cfg.load_from = load_from
        if load_from is None:
            os.makedirs(str(work), exist_ok=True)
            with open(str(work / 'last_checkpoint'), 'w') as f:
                f.write(path)
        runner = Runner.from_cfg(cfg)
        with pytest.raises(pickle.UnpicklingError,
                           match=r'Refusing to load checkpoint .*epoch_1\.pth'
                           ) as e:
            runner.train()
        assert 'os.makedirs' in str(e.value) or 'makedirs' in str(e.value)


def test_load_from_refuses_pickled_code(fmnist_root, tmp_path, evil):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'w'))
    cfg.load_from = evil('pretrained.pth')
    with pytest.raises(pickle.UnpicklingError, match='pretrained.pth'):
        Runner.from_cfg(cfg).train()


def test_client_state_file_with_code_is_refused(fmnist_root, tmp_path, evil,
                                               monkeypatch):
    """Refused (never executed), reported as code, and the client
    restarts with fresh local state."""
    from decssl_mm.federated import DiskClientStateStore, state_recovery
    seen = []
    monkeypatch.setattr(state_recovery, 'print_log',
                        lambda msg, **kw: seen.append(msg))
    store = DiskClientStateStore()
    store.setup(str(tmp_path / 'w'))
    store.save(3, {'local': {}}, 0)
    target = store._path(3, 0)
    os.replace(evil('tampered.pth'), target)
    assert store.load(3) is None
    assert len(seen) == 1
    assert 'holds code' in seen[0] and 'client_000003' in seen[0]
    assert 'Refusing to load' in seen[0]


def test_tampered_client_state_restarts_the_client(fmnist_root, tmp_path,
                                                   evil):
    """In a run: the client whose state file was replaced by one holding
    code restarts with fresh local state (a warning names the file as
    holding code); nothing in the file runs and the round keeps it."""
    work = tmp_path / 'w'
    keep_empty = {'train_cfg.client_state': dict(
        type='DiskClientStateStore', skip_empty=False)}
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(work), rounds=1,
                             num_clients=2, local_iters=1, extra=keep_empty)
    Runner.from_cfg(cfg).train()
    target = str(work / 'client_states' / 'client_000000.r000000.pth')
    os.replace(evil('tampered.pth'), target)
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(work), rounds=2,
                             num_clients=2, local_iters=1, extra=keep_empty)
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert 'client 0 failed' not in log
    assert 'holds code' in log and 'client_000000.r000000.pth' in log
    hub = runner.message_hub
    assert hub.get_scalar('train/federated/clients_ok').current() == 2


def test_pretrained_init_cfg_refuses_pickled_code(tmp_path, evil):
    """Downstream backbones load with init_cfg=dict(type='Pretrained')."""
    from mmpretrain.models import ResNet
    path = evil('backbone.pth')
    for prefix in ('backbone.', None):
        init = dict(type='Pretrained', checkpoint=path)
        if prefix:
            init['prefix'] = prefix
        model = ResNet(depth=18, base_channels=8, stem_channels=8,
                       init_cfg=init)
        with pytest.raises(pickle.UnpicklingError, match='backbone.pth'):
            model.init_weights()
    # a plain state dict still loads
    good = ResNet(depth=18, base_channels=8, stem_channels=8)
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': {'backbone.' + k: v + 1 for k, v in
                               good.state_dict().items()}}, plain)
    model = ResNet(depth=18, base_channels=8, stem_channels=8,
                   init_cfg=dict(type='Pretrained', checkpoint=plain,
                                 prefix='backbone.'))
    model.init_weights()
    assert torch.equal(model.conv1.weight, good.conv1.weight + 1)


def test_exported_backbone_refuses_pickled_code(evil):
    from decssl_mm.evaluation.export import extract_backbone_state
    path = evil('federated.pth')
    with pytest.raises(ValueError, match=r'Refusing to load .*federated\.pth'):
        extract_backbone_state(path)


def test_partition_and_feature_files_hold_data_only(fmnist_root, tmp_path):
    """Partitions are JSON; feature arrays are read with allow_pickle=False."""
    from decssl_mm.datasets import ClientPartitionedDataset
    marker = str(tmp_path / 'PWNED')
    ds = dict(type='FashionMNISTGz', data_root=fmnist_root, split='train',
              pipeline=[])
    pfile = str(tmp_path / 'partition.json')
    for protocol in (0, pickle.HIGHEST_PROTOCOL):  # ASCII and binary
        with open(pfile, 'wb') as f:
            pickle.dump({'clients': CodePayload(marker)}, f, protocol=protocol)
        with pytest.raises(ValueError) as e:
            ClientPartitionedDataset(dataset=ds, partition_file=pfile)
        if protocol == 0:
            assert 'partition.json' in str(e.value)
            assert 'not valid JSON' in str(e.value)
    feats = str(tmp_path / 'features.npy')
    np.save(feats, np.array([CodePayload(marker)] * 120, dtype=object),
            allow_pickle=True)
    with pytest.raises(ValueError, match='allow_pickle'):
        ClientPartitionedDataset(
            dataset=ds, features_file=feats,
            partition=dict(type='FeatureCluster', num_clients=2, seed=0))
    assert not osp.exists(marker)
