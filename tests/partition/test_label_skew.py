"""Heterogeneity of Dirichlet and Skew partitions."""
import math

import numpy as np
import pytest

from decssl_mm.partition import IID, Dirichlet, Skew

from .conftest import make_labels


def _mean_entropy(part, labels) -> float:
    return part.stats(labels)['mean_entropy']


def test_dirichlet_entropy_increases_with_alpha():
    labels = make_labels(num=4000, num_classes=10)
    means = []
    for alpha in (0.01, 0.1, 1.0, 100.0):
        values = [
            _mean_entropy(
                Dirichlet(num_clients=10, alpha=alpha, min_size=0,
                          seed=s)(labels), labels) for s in range(5)
        ]
        means.append(np.mean(values))
    assert means[0] < means[1] < means[2] < means[3]
    assert means[3] > 0.95 * math.log(10)


def test_dirichlet_emd_decreases_with_alpha():
    labels = make_labels(num=4000, num_classes=10)
    emd = [
        np.mean([
            Dirichlet(num_clients=10, alpha=a, min_size=0,
                      seed=s)(labels).stats(labels)['mean_emd']
            for s in range(3)
        ]) for a in (0.05, 1.0, 100.0)
    ]
    assert emd[0] > emd[1] > emd[2]


def test_dirichlet_min_size_redraws():
    labels = make_labels(num=2000, num_classes=20)
    part = Dirichlet(num_clients=10, alpha=0.3, min_size=50, seed=0)(labels)
    assert part.client_sizes.min() >= 50


def test_dirichlet_balance_caps_growth():
    labels = make_labels(num=20000, num_classes=100)
    plain = Dirichlet(num_clients=20, alpha=0.1, min_size=0, seed=0)(labels)
    bal = Dirichlet(
        num_clients=20, alpha=0.1, balance=True, min_size=0, seed=0)(labels)
    cap = labels.size / 20
    largest_class = np.bincount(labels).max()
    # a client only grows while below N/K, so it overshoots by < one class
    assert bal.client_sizes.max() < cap + largest_class
    assert bal.client_sizes.std() < plain.client_sizes.std()
    # still label-skewed
    assert (bal.stats(labels)['mean_entropy'] <
            IID(num_clients=20)(labels).stats(labels)['mean_entropy'] - 0.5)


def test_dirichlet_tiny_alpha_needs_balance_or_classes():
    labels = make_labels(num=500, num_classes=5)
    with pytest.raises(ValueError, match='min_size'):
        Dirichlet(num_clients=10, alpha=0.001, max_tries=5, seed=0)(labels)
    part = Dirichlet(num_clients=10, alpha=0.001, balance=True, seed=0)(labels)
    assert part.client_sizes.min() >= 1


def test_skew_one_is_iid():
    labels = make_labels(num=3000, num_classes=10)
    part = Skew(num_clients=10, ratio=1.0, seed=0)(labels)
    stats = part.stats(labels)
    iid = IID(num_clients=10, seed=0)(labels).stats(labels)
    assert stats['mean_entropy'] > 0.99 * stats['global_entropy']
    assert abs(stats['mean_emd'] - iid['mean_emd']) < 0.1
    assert stats['mean_emd'] < 0.2
    assert part.client_sizes.max() - part.client_sizes.min() <= 2


@pytest.mark.parametrize('num_classes,num_clients', [(10, 10), (10, 4),
                                                     (10, 3), (100, 10),
                                                     (4, 10)])
@pytest.mark.parametrize('seed', range(3))
def test_skew_zero_few_classes_per_client(num_classes, num_clients, seed):
    labels = np.repeat(np.arange(num_classes), 60)
    part = Skew(num_clients=num_clients, ratio=0.0, seed=seed)(labels)
    per_client = (part.stats(labels)['histograms'] > 0).sum(axis=1)
    assert per_client.max() <= math.ceil(num_classes / num_clients) + 1


def test_skew_heterogeneity_monotone_in_ratio():
    labels = make_labels(num=3000, num_classes=10)
    ent = [
        Skew(num_clients=10, ratio=r, seed=0)(labels).stats(labels)
        ['mean_entropy'] for r in (0.0, 0.2, 0.5, 0.8, 1.0)
    ]
    assert all(a < b for a, b in zip(ent, ent[1:]))


def test_skew_iid_fraction_per_class():
    labels = np.repeat(np.arange(5), 100)
    part = Skew(num_clients=5, ratio=0.4, seed=0)(labels)
    hist = part.stats(labels)['histograms']
    # 40 samples of every class are spread over all clients, the other 60
    # form one client's label-sorted chunk.
    assert np.all(hist > 0)
    assert sorted(hist.argmax(axis=0).tolist()) == list(range(5))
    assert np.all(hist.max(axis=1) >= 60)
    assert hist.sum() == 500
