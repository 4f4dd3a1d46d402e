"""Bad configs and files fail before any training, naming the key or file."""
import glob
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from _helpers.configs import ROOT, tiny_federated_cfg
from decssl_mm.utils.config_check import check_config
from decssl_mm.utils.preflight import check_registered_types

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
COCO = 'configs/decssl/mocov2_r50_coco_noniid.py'


def _nothing_written(work_dir):
    assert not glob.glob(osp.join(str(work_dir), '*.pth'))
    assert not glob.glob(osp.join(str(work_dir), 'client_states', '*'))


def _train_fails(cfg, exc, match, work_dir):
    """The error comes from building the run, before the first iteration."""
    runner = Runner.from_cfg(cfg)
    with pytest.raises(exc, match=match):
        runner.train()
    _nothing_written(work_dir)


# ------------------------------------------------------------ data files
def test_missing_data_root_through_tools_train(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'w'))
    cfg.train_dataloader.dataset.dataset.data_root = str(tmp_path / 'nope')
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, 'tools/train.py', path],
                         cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0
    assert 'train_dataloader.dataset.dataset.data_root' in out.stderr
    assert str(tmp_path / 'nope') in out.stderr
    assert not osp.exists(str(tmp_path / 'w'))  # not even a work dir


def test_missing_annotation_file(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, COCO))
    cfg.train_dataloader.dataset.dataset.data_root = str(tmp_path)
    with pytest.raises(FileNotFoundError,
                       match=r'train_dataloader\.dataset\.dataset\.ann_file'
                       r'.*instances_train2017\.json'):
        check_config(cfg)


def test_data_root_without_the_dataset_files(fmnist_root, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'w'))
    cfg.train_dataloader.dataset.dataset.data_root = str(empty)
    check_config(cfg)  # the folder exists ...
    _train_fails(cfg, FileNotFoundError,  # ... the files do not
                 r'train-images-idx3-ubyte.*' + str(empty), tmp_path / 'w')


def _save_partition_for(keys, path, clients):
    from decssl_mm.partition import Partition, fingerprint_of
    Partition(clients, num_samples=len(keys),
              fingerprint=fingerprint_of(keys)).save(path)


def test_partition_file_of_another_dataset(fmnist_root, tmp_path):
    from decssl_mm.datasets.fashion_mnist import FashionMNISTGz
    test_split = FashionMNISTGz(data_root=fmnist_root, split='test')
    keys = np.array([test_split.get_data_info(i)['gt_label']
                     for i in range(len(test_split))])
    pfile = str(tmp_path / 'test_split_partition.json')
    _save_partition_for(keys, pfile, np.array_split(np.arange(len(keys)), 4))
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'w'))
    ds = cfg.train_dataloader.dataset
    ds.pop('partition')
    ds.partition_file = pfile  # made for the 60-sample test split
    check_config(cfg)
    _train_fails(cfg, ValueError,
                 r'test_split_partition\.json.*fingerprint mismatch',
                 tmp_path / 'w')


# ------------------------------------------------------------ train_cfg
@pytest.mark.parametrize('key,value,match', [
    ('rounds', 0, 'train_cfg.rounds'),
    ('rounds', -3, 'train_cfg.rounds'),
    ('participation', 0.0, 'train_cfg.participation'),
    ('participation', 1.5, 'train_cfg.participation'),
    ('participation', -0.2, 'train_cfg.participation'),
])
def test_bad_train_cfg_in_preflight(fmnist_root, tmp_path, key, value,
                                    match):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_cfg[key] = value
    with pytest.raises(ValueError, match=match):
        check_config(cfg)


def test_bad_rounds_also_refused_by_the_loop(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_cfg.rounds = 0
    _train_fails(cfg, ValueError, 'train_cfg.rounds', tmp_path)


def test_more_clients_than_samples(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path),
                             num_clients=500)  # 120 samples
    cfg.train_dataloader.dataset.partition.min_size = 0
    _train_fails(cfg, ValueError, 'num_clients=500 exceeds', tmp_path)


def test_more_clients_per_round_than_clients(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path),
                             num_clients=4,
                             extra={'train_cfg.clients_per_round': 5})
    _train_fails(cfg, ValueError, r'clients_per_round.*\(5\)', tmp_path)


def _partition_with_empty_client(fmnist_root, path):
    from decssl_mm.datasets.fashion_mnist import FashionMNISTGz
    train = FashionMNISTGz(data_root=fmnist_root, split='train')
    keys = np.array([train.get_data_info(i)['gt_label']
                     for i in range(len(train))])
    idx = np.arange(len(keys))
    _save_partition_for(keys, path, [idx[:60], idx[60:], idx[:0]])


def test_client_without_samples(fmnist_root, tmp_path):
    """An error naming the client by default; with allow_empty_clients=True
    the client is skipped (logged) and never trained."""
    pfile = str(tmp_path / 'p.json')
    _partition_with_empty_client(fmnist_root, pfile)
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / 'a'),
                             num_clients=3)
    ds = cfg.train_dataloader.dataset
    ds.pop('partition')
    ds.partition_file = pfile
    _train_fails(cfg, ValueError, r'client 2 of 3 holds no samples',
                 tmp_path / 'a')

    ds.allow_empty_clients = True
    # a state file for every trained client, even an empty one (SimCLR)
    cfg.train_cfg.client_state = dict(
        type='DiskClientStateStore', skip_empty=False)
    cfg.work_dir = str(tmp_path / 'b')
    cfg.experiment_name += '_b'  # a logger (and log file) of its own
    runner = Runner.from_cfg(cfg)
    runner.train()
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        assert 'clients [2] hold no samples' in f.read()
    states = sorted(  # not the checksum sidecars
        n for n in os.listdir(str(tmp_path / 'b' / 'client_states'))
        if n.endswith('.pth'))
    assert states == ['client_000000.r000000.pth',
                      'client_000001.r000000.pth']
    hub = runner.message_hub
    assert hub.get_scalar('train/federated/clients_ok').current() == 2
    assert hub.get_scalar('train/federated/clients_failed').current() == 0


# ------------------------------------------------------- unknown types
def test_unknown_algorithm_lists_registered_names(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.model.type = 'SimCLRR'
    with pytest.raises(KeyError) as e:
        check_registered_types(cfg)
    msg = str(e.value)
    assert "model.type 'SimCLRR' is not registered" in msg
    assert "Did you mean ['SimCLR'" in msg
    for name in ('MoCo', 'BYOL', 'SwAV', 'BarlowTwins', 'DenseCL'):
        assert f"'{name}'" in msg


@pytest.mark.parametrize('key', ['aggregator', 'sampler', 'client_state'])
def test_unknown_federated_component_lists_registered_names(
        fmnist_root, tmp_path, key):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_cfg[key] = dict(type='FedMagic')
    with pytest.raises(KeyError, match=f'train_cfg.{key}.type .FedMagic.'):
        check_registered_types(cfg)


def test_unknown_aggregator_through_the_runner(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_cfg.aggregator = dict(type='Median')
    with pytest.raises(KeyError) as e:
        Runner.from_cfg(cfg).train()
    for name in ('CoordinateMedian', 'FedAvg', 'NormClippedFedAvg',
                 'TrimmedMean'):
        assert name in str(e.value)
    _nothing_written(tmp_path)


def test_unknown_partitioner_and_dataset(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_dataloader.dataset.partition.type = 'Dirichelt'
    with pytest.raises(KeyError, match=r"partition.type 'Dirichelt'.*"
                       r"Did you mean \['Dirichlet'\]"):
        check_registered_types(cfg)
    cfg = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path))
    cfg.train_dataloader.dataset.dataset.type = 'FashionMNIST_gz'
    with pytest.raises(KeyError, match=r'train_dataloader\.dataset\.dataset'
                       r"\.type 'FashionMNIST_gz'"):
        check_registered_types(cfg)


def test_every_shipped_config_passes_the_type_check():
    paths = sorted(
        glob.glob(osp.join(ROOT, 'configs', 'decssl', '*.py')) +
        glob.glob(osp.join(ROOT, 'configs', 'reliability', '*.py')))
    assert len(paths) > 10
    for path in paths:
        check_registered_types(Config.fromfile(path))


# --------------------------------------------------- downstream export
def test_checkpoint_without_backbone_keys(tmp_path):
    from decssl_mm.evaluation.export import extract_backbone_state
    path = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {'head.fc.weight': torch.ones(2, 2),
                               'neck.mlp.0.weight': torch.ones(2, 2)}}, path)
    with pytest.raises(ValueError,
                       match=r'head_only\.pth: no backbone weights'):
        extract_backbone_state(path)
