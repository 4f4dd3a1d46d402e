"""Properties every partitioner must have."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decssl_mm.partition import (IID, BasePartitioner, Dirichlet,
                                 FeatureCluster, NaturalId, Partition,
                                 Pathological, Quantity, Shards, Skew,
                                 build_partition, build_partitioner,
                                 recipe_to_cfg)
from decssl_mm.registry import PARTITIONERS

from .conftest import PARTITIONER_CFGS, make_features, make_labels


def _check_cover(part: Partition, num: int) -> None:
    """Disjoint, sorted, in range, covering every non-dropped sample."""
    part.validate()
    assert part.num_samples == num
    allidx = np.concatenate([part.indices(k) for k in range(len(part))])
    assert allidx.size + part.dropped == num
    assert np.unique(allidx).size == allidx.size
    for k in range(part.num_clients):
        idx = part.indices(k)
        assert idx.dtype == np.int64
        assert np.all(np.diff(idx) > 0)


def test_all_partitioners_registered():
    names = set(PARTITIONERS.module_dict)
    assert {
        'IID', 'Dirichlet', 'Pathological', 'Shards', 'Skew', 'Quantity',
        'FeatureCluster', 'NaturalId'
    } <= names
    for name in names:
        assert issubclass(PARTITIONERS.get(name), BasePartitioner)


@pytest.mark.parametrize('cfg', PARTITIONER_CFGS, ids=lambda c: c['type'])
@pytest.mark.parametrize('seed', range(8))
def test_cover_and_disjoint_over_seeds(cfg, seed):
    labels = make_labels(seed=seed)
    feats = make_features(labels, seed=seed)
    part = build_partition(dict(cfg, seed=seed), labels, feats)
    _check_cover(part, labels.size)
    expected = cfg.get('num_clients') or np.unique(labels).size
    assert part.num_clients == expected
    if cfg['type'] not in ('Pathological', 'NaturalId'):
        assert part.dropped == 0


@pytest.mark.parametrize('cfg', PARTITIONER_CFGS, ids=lambda c: c['type'])
def test_same_seed_same_json(cfg, tmp_path):
    labels = make_labels()
    feats = make_features(labels)
    first = build_partition(dict(cfg, seed=3), labels, feats)
    second = build_partition(dict(cfg, seed=3), labels.copy(), feats.copy())
    assert first.to_json() == second.to_json()
    first.save(tmp_path / 'a.json')
    second.save(tmp_path / 'b.json')
    assert (tmp_path / 'a.json').read_bytes() == \
        (tmp_path / 'b.json').read_bytes()


@pytest.mark.parametrize('cfg', PARTITIONER_CFGS, ids=lambda c: c['type'])
def test_recipe_rebuilds_partition(cfg):
    labels = make_labels(seed=1)
    feats = make_features(labels, seed=1)
    part = build_partition(dict(cfg, seed=5), labels, feats)
    assert part.recipe['type'] == cfg['type']
    assert part.recipe['seed'] == 5
    json.dumps(part.recipe)
    again = build_partition(recipe_to_cfg(part.recipe), labels, feats)
    assert again == part
    # A recipe dict with ``params`` is accepted by the builder as well.
    assert build_partition(part.recipe, labels, feats) == part


def test_build_partitioner_accepts_instances_and_classes():
    iid = IID(num_clients=3, seed=4)
    assert build_partitioner(iid) is iid
    built = build_partitioner(dict(type=Skew, num_clients=2, ratio=0.5))
    assert isinstance(built, Skew) and built.ratio == 0.5
    assert repr(built) == 'Skew(num_clients=2, ratio=0.5, seed=0)'
    assert built.recipe == dict(
        type='Skew', params=dict(num_clients=2, ratio=0.5), seed=0)


def test_different_seed_differs():
    labels = make_labels()
    a = Dirichlet(num_clients=5, alpha=0.5, seed=0)(labels)
    b = Dirichlet(num_clients=5, alpha=0.5, seed=1)(labels)
    assert a != b


@settings(max_examples=60, deadline=None)
@given(
    num=st.integers(1, 200),
    num_classes=st.integers(1, 12),
    num_clients=st.integers(1, 15),
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(['IID', 'Dirichlet', 'Shards', 'Skew', 'Quantity',
                          'Pathological']))
def test_cover_property(num, num_classes, num_clients, seed, kind):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num) * 7 - 3  # sparse, negative
    num_clients = min(num_clients, num)
    classes = np.unique(labels).size
    cfg = dict(type=kind, num_clients=num_clients, seed=seed)
    if kind == 'Dirichlet':
        cfg.update(alpha=float(rng.uniform(0.05, 5)), min_size=0,
                   balance=bool(rng.integers(2)))
    elif kind == 'Skew':
        cfg.update(ratio=float(rng.uniform()))
    elif kind == 'Shards':
        cfg.update(shards_per_client=int(max(1, num // num_clients // 2)))
    elif kind == 'Pathological':
        cfg.update(classes_per_client=int(rng.integers(1, classes + 1)))
    part = build_partition(cfg, labels)
    _check_cover(part, num)
    assert part.num_clients == num_clients


def test_string_keys_supported():
    keys = np.array(['cat', 'dog', 'emu'] * 20)
    part = Dirichlet(num_clients=4, alpha=1.0, min_size=0)(keys)
    _check_cover(part, keys.size)
    assert part.fingerprint['key_kind'] == 'str'
    stats = part.stats(keys)
    assert list(stats['classes']) == ['cat', 'dog', 'emu']


def test_iid_sizes_differ_by_at_most_one(labels):
    for k in (1, 3, 7, 11, 300):
        sizes = IID(num_clients=k, seed=2)(labels).client_sizes
        assert sizes.sum() == labels.size
        assert sizes.max() - sizes.min() <= 1


def test_pathological_classes_per_client(labels):
    part = Pathological(num_clients=10, classes_per_client=3, seed=4)(labels)
    hist = part.stats(labels)['histograms']
    assert np.all((hist > 0).sum(axis=1) == 3)
    # every class is held by floor/ceil(K * m / C) = 3 clients
    assert np.all((hist > 0).sum(axis=0) == 3)
    assert part.dropped == 0


def test_pathological_leftover_classes_dropped(labels):
    part = Pathological(num_clients=2, classes_per_client=3, seed=0)(labels)
    hist = part.stats(labels)['histograms']
    held = (hist > 0).any(axis=0)
    assert held.sum() == 6
    counts = np.bincount(labels)
    assert part.dropped == counts[~held].sum()


def test_shards_sizes_and_labels(labels):
    part = Shards(num_clients=10, shards_per_client=2, seed=0)(labels)
    sizes = part.client_sizes
    assert sizes.max() - sizes.min() <= 2
    hist = part.stats(labels)['histograms']
    # two label-sorted shards span at most 2 * 2 labels
    assert np.all((hist > 0).sum(axis=1) <= 4)


def test_quantity_sizes_skewed_labels_iid():
    labels = make_labels(num=5000, num_classes=5)
    part = Quantity(num_clients=10, power=2.0, min_size=10, seed=0)(labels)
    sizes = part.client_sizes
    assert sizes.sum() == labels.size and sizes.min() >= 10
    assert sizes.max() > 10 * np.median(sizes)
    big = int(np.argmax(sizes))
    stats = part.stats(labels)
    assert stats['emd'][big] < 0.1
    flat = Quantity(num_clients=10, power=0.0, seed=0)(labels).client_sizes
    assert flat.max() - flat.min() <= 1


def test_quantity_dirichlet_min_size():
    labels = make_labels(num=1000)
    part = Quantity(
        num_clients=20, distribution='dirichlet', alpha=0.05, min_size=5,
        seed=1)(labels)
    assert part.client_sizes.min() >= 5
    assert part.client_sizes.sum() == 1000


def test_feature_cluster_recovers_blobs():
    labels = make_labels(num=600, num_classes=4)
    feats = make_features(labels, dim=2, seed=3)
    fc = FeatureCluster(num_clients=4, mode='one_per_client', seed=0)
    part = fc(np.zeros(labels.size, dtype=int), feats)
    hist = part.stats(labels)['histograms']
    # well separated blobs: each client is (nearly) one label
    purity = hist.max(axis=1).sum() / hist.sum()
    assert purity > 0.95
    ids = fc.cluster(feats)
    assert ids.shape == labels.shape and set(np.unique(ids)) == set(range(4))


def test_feature_cluster_dirichlet_mode_uses_features_only():
    labels = make_labels(num=400)
    feats = make_features(labels)
    fc = FeatureCluster(num_clients=5, num_clusters=10, alpha=0.1,
                        min_size=0, seed=0)
    a = fc(labels, feats)
    b = fc(np.zeros_like(labels), feats)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
