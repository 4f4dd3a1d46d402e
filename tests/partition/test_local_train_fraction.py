"""`local_train_fraction`: the paper's code's first-80 % cut of a client's
index list, taken in the order its label-based draw deals the indices."""
import numpy as np
import pytest
from torch.utils.data import Dataset

from decssl_mm.datasets.client_dataset import (ClientPartitionedDataset,
                                               local_train_cut)


class _Labelled(Dataset):
    """A tiny dataset of labels only."""

    def __init__(self, labels):
        self.labels = list(labels)
        self.metainfo = dict(classes=[str(c) for c in sorted(set(labels))])

    def get_data_info(self, idx):
        return dict(gt_label=self.labels[idx])

    def __getitem__(self, idx):
        return self.get_data_info(idx)

    def __len__(self):
        return len(self.labels)


def official_client_list(indices, labels):
    """A client's list as a label-dealing draw builds it: class 0's indices,
    then class 1's, ... (within a class in index order here)."""
    out = []
    for k in sorted(set(labels[indices].tolist())):
        out += [int(i) for i in indices if labels[i] == k]
    return out


def test_cut_equals_the_official_first_80_percent():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=60)
    client = np.sort(rng.choice(60, size=23, replace=False))
    official = official_client_list(client, labels)
    want = sorted(official[:int(0.8 * len(official))])
    got = local_train_cut(client, labels, 0.8, 'label')
    assert got.tolist() == want
    assert got.size == int(0.8 * 23) == 18
    # the classes lost are the client's last ones
    lost = set(labels[np.setdiff1d(client, got)].tolist())
    assert max(lost) == labels[client].max()


def test_index_order_and_validation():
    labels = np.array([1, 0, 1, 0, 2, 2, 0, 1])
    assert local_train_cut(np.arange(8), labels, 0.5,
                           'index').tolist() == [0, 1, 2, 3]
    ds = _Labelled(labels.tolist())
    for bad in (0, 1.5, 'x', True):
        with pytest.raises(ValueError, match='local_train_fraction'):
            ClientPartitionedDataset(ds, partition=dict(
                type='IID', num_clients=2, seed=0),
                local_train_fraction=bad)
    with pytest.raises(ValueError, match='local_train_order'):
        ClientPartitionedDataset(ds, partition=dict(
            type='IID', num_clients=2, seed=0), local_train_order='random')


@pytest.mark.parametrize('ptype,order', [('IID', 'index'),
                                         ('Skew', 'label')])
def test_wrapper_trains_on_the_cut_and_keeps_the_partition(ptype, order):
    labels = np.repeat(np.arange(5), 8)
    part = dict(type=ptype, num_clients=4, seed=0)
    if ptype == 'Skew':
        part['ratio'] = 0.0
    full = ClientPartitionedDataset(_Labelled(labels.tolist()),
                                    partition=part)
    cut = ClientPartitionedDataset(_Labelled(labels.tolist()),
                                   partition=part, local_train_fraction=0.8)
    assert cut.partition.client_sizes.tolist() == \
        full.partition.client_sizes.tolist()
    for k in range(4):
        mine = full.client_indices(k)
        want = local_train_cut(mine, labels, 0.8, order)
        assert cut.client_indices(k).tolist() == want.tolist()
        assert cut.client_sizes[k] == int(0.8 * mine.size)
