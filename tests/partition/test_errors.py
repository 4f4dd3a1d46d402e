"""Bad inputs raise a ValueError that names the offending argument."""
import numpy as np
import pytest

from decssl_mm.partition import (IID, Dirichlet, FeatureCluster, NaturalId,
                                 Pathological, Quantity, Shards, Skew,
                                 build_partition)

from .conftest import make_labels


@pytest.mark.parametrize('alpha', [0, -0.5, float('nan'), float('inf'), 'x'])
def test_alpha_must_be_positive(alpha):
    with pytest.raises(ValueError, match='alpha'):
        Dirichlet(num_clients=3, alpha=alpha)
    with pytest.raises(ValueError, match='alpha'):
        Quantity(num_clients=3, distribution='dirichlet', alpha=alpha)
    with pytest.raises(ValueError, match='alpha'):
        FeatureCluster(num_clients=3, alpha=alpha)


@pytest.mark.parametrize('cls,kwargs', [
    (IID, {}),
    (Dirichlet, dict(alpha=1.0)),
    (Pathological, {}),
    (Shards, {}),
    (Skew, dict(ratio=0.5)),
    (Quantity, {}),
    (FeatureCluster, {}),
    (NaturalId, {}),
])
@pytest.mark.parametrize('num_clients', [0, -2, 1.5, True, '3'])
def test_num_clients_at_least_one(cls, kwargs, num_clients):
    with pytest.raises(ValueError, match='num_clients'):
        cls(num_clients=num_clients, **kwargs)


@pytest.mark.parametrize('cfg', [
    dict(type='IID'),
    dict(type='Dirichlet', alpha=1.0, min_size=0),
    dict(type='Shards', shards_per_client=1),
    dict(type='Skew', ratio=0.5),
    dict(type='Quantity', min_size=0),
    dict(type='Pathological', classes_per_client=1),
])
def test_more_clients_than_samples(cfg):
    labels = np.arange(5)
    with pytest.raises(ValueError, match='num_clients'):
        build_partition(dict(cfg, num_clients=6), labels)


def test_min_size_impossible():
    labels = make_labels(num=100)
    with pytest.raises(ValueError, match='min_size'):
        Dirichlet(num_clients=10, alpha=1.0, min_size=11)(labels)
    with pytest.raises(ValueError, match='min_size'):
        Dirichlet(num_clients=10, alpha=0.01, min_size=10, max_tries=3)(labels)
    with pytest.raises(ValueError, match='min_size'):
        Quantity(num_clients=10, min_size=11)(labels)
    with pytest.raises(ValueError, match='min_size'):
        Dirichlet(num_clients=10, alpha=1.0, min_size=-1)


def test_classes_per_client_too_large():
    labels = make_labels(num_classes=10)
    with pytest.raises(ValueError, match='classes_per_client'):
        Pathological(num_clients=3, classes_per_client=11)(labels)
    with pytest.raises(ValueError, match='classes_per_client'):
        Pathological(num_clients=3, classes_per_client=0)


@pytest.mark.parametrize('cls,kwargs', [
    (IID, {}),
    (Dirichlet, dict(alpha=1.0)),
    (Pathological, {}),
    (Shards, {}),
    (Skew, dict(ratio=0.5)),
    (Quantity, {}),
    (NaturalId, {}),
])
@pytest.mark.parametrize('keys', [[], np.array([], dtype=np.int64), None,
                                  np.zeros((3, 2), dtype=int)])
def test_empty_or_malformed_keys(cls, kwargs, keys):
    with pytest.raises(ValueError, match='labels'):
        cls(num_clients=1, **kwargs)(keys)


def test_other_arguments_named():
    labels = make_labels(num=50)
    with pytest.raises(ValueError, match='ratio'):
        Skew(num_clients=2, ratio=1.5)
    with pytest.raises(ValueError, match='shards_per_client'):
        Shards(num_clients=10, shards_per_client=6)(labels)
    with pytest.raises(ValueError, match='distribution'):
        Quantity(num_clients=2, distribution='zipf')
    with pytest.raises(ValueError, match='power'):
        Quantity(num_clients=2, power=-1)
    with pytest.raises(ValueError, match='seed'):
        IID(num_clients=2, seed=-1)
    with pytest.raises(ValueError, match='max_tries'):
        Dirichlet(num_clients=2, alpha=1, max_tries=0)
    with pytest.raises(ValueError, match='balance'):
        Dirichlet(num_clients=2, alpha=1, balance='yes')
    with pytest.raises(ValueError, match='features'):
        FeatureCluster(num_clients=2)(labels)
    with pytest.raises(ValueError, match='features'):
        FeatureCluster(num_clients=2)(labels, np.zeros((49, 2)))
    with pytest.raises(ValueError, match='num_clusters'):
        FeatureCluster(num_clients=2, num_clusters=3, mode='one_per_client')
    with pytest.raises(ValueError, match='num_clusters'):
        FeatureCluster(num_clients=2, num_clusters=51)(labels,
                                                       np.zeros((50, 2)))
    with pytest.raises(ValueError, match='mode'):
        FeatureCluster(num_clients=2, mode='kmeans')


def test_unknown_type_lists_registered_names():
    with pytest.raises(ValueError) as info:
        build_partition(dict(type='Dirichlett', num_clients=2), np.arange(4))
    message = str(info.value)
    assert 'Dirichlett' in message
    for name in ('IID', 'Dirichlet', 'Skew', 'NaturalId', 'FeatureCluster'):
        assert name in message
    with pytest.raises(ValueError, match='dict'):
        build_partition('Dirichlet', np.arange(4))
