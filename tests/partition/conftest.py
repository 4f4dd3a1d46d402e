"""Shared fixtures of the partition tests."""
import numpy as np
import pytest

#: One small config per registered partitioner; ``make_labels`` suits all.
PARTITIONER_CFGS = [
    dict(type='IID', num_clients=7),
    dict(type='Dirichlet', num_clients=6, alpha=0.5, min_size=0),
    dict(type='Dirichlet', num_clients=6, alpha=0.1, balance=True,
         min_size=0),
    dict(type='Pathological', num_clients=8, classes_per_client=2),
    dict(type='Pathological', num_clients=2, classes_per_client=2),
    dict(type='Shards', num_clients=5, shards_per_client=3),
    dict(type='Skew', num_clients=6, ratio=0.3),
    dict(type='Quantity', num_clients=6, distribution='power_law', power=1.5),
    dict(type='Quantity', num_clients=6, distribution='dirichlet', alpha=0.3),
    dict(type='FeatureCluster', num_clients=4, num_clusters=6, min_size=0),
    dict(type='FeatureCluster', num_clients=4, mode='one_per_client'),
    dict(type='NaturalId'),
    dict(type='NaturalId', num_clients=3, group='random'),
]


def make_labels(num: int = 300, num_classes: int = 10,
                seed: int = 0) -> np.ndarray:
    """Random int labels covering every class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num)
    labels[:num_classes] = np.arange(num_classes)
    return rng.permutation(labels)


def make_features(labels: np.ndarray, dim: int = 3,
                  seed: int = 0) -> np.ndarray:
    """Gaussian blobs around a per-label center."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(int(labels.max()) + 1, dim))
    return centers[labels] + rng.normal(size=(labels.size, dim))


@pytest.fixture
def labels() -> np.ndarray:
    return make_labels()
