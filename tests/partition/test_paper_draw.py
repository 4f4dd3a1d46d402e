"""Dirichlet(size_range=...): the paper's draw with bounded client sizes."""
import numpy as np
import pytest

from decssl_mm.partition import Dirichlet, Partition, build_partition
from decssl_mm.partition.dirichlet import _capped_counts, check_size_range


def _labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    """``per_class`` samples of each class, in random order."""
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels)


# 10 clients: 100 classes x 100 samples; 100 clients: 1000 classes x 10.
# With fewer classes than that the draw is infeasible at small alpha (see
# test_infeasible_draw_raises_naming_the_settings).
@pytest.mark.parametrize('num_clients,num_classes,per_class',
                         [(10, 100, 100), (100, 1000, 10)])
@pytest.mark.parametrize('alpha', [0.02, 0.1, 1.0])
def test_sizes_within_bounds(num_clients, num_classes, per_class, alpha):
    labels = _labels(num_classes, per_class)
    part = Dirichlet(num_clients=num_clients, alpha=alpha,
                     size_range=(0.5, 1.5), seed=0)(labels)
    part.validate()
    mean = labels.size / num_clients
    sizes = part.client_sizes
    assert sizes.sum() == labels.size and part.dropped == 0
    assert sizes.min() >= 0.5 * mean, sizes
    assert sizes.max() <= 1.5 * mean, sizes


def test_label_skew_grows_as_alpha_shrinks():
    labels = _labels(100, 100)
    entropy = [
        Dirichlet(num_clients=10, alpha=a, size_range=(0.5, 1.5),
                  seed=0)(labels).stats(labels)['mean_entropy']
        for a in (0.02, 1.0, 100.0)
    ]
    assert entropy[0] < entropy[1] < entropy[2]
    assert entropy[2] > 0.95 * np.log(100)


def test_same_seed_same_split_other_seed_other_split():
    labels = _labels(100, 100)

    def draw(seed):
        return Dirichlet(num_clients=10, alpha=0.1, size_range=(0.5, 1.5),
                         seed=seed)(labels)

    a, b, c = draw(3), draw(3), draw(4)
    assert a == b
    assert any(not np.array_equal(a.indices(k), c.indices(k))
               for k in range(10))


def test_recipe_rebuilds_and_survives_json(tmp_path):
    labels = _labels(100, 100)
    part = Dirichlet(num_clients=10, alpha=0.1, size_range=(0.5, 1.5),
                     seed=1)(labels)
    params = part.recipe['params']
    assert params['size_range'] == [0.5, 1.5]
    assert params['max_tries'] == 1000  # the paper's number of attempts
    assert build_partition(part.recipe, labels) == part
    path = str(tmp_path / 'part.json')
    part.save(path)
    assert Partition.load(path) == part
    # the default draw keeps its recipe (no size_range entry)
    plain = Dirichlet(num_clients=10, alpha=0.1)
    assert 'size_range' not in plain.params() and plain.max_tries == 100


def test_infeasible_draw_raises_naming_the_settings():
    # 10 classes of 1000 over 100 clients at alpha 0.1: a class goes almost
    # whole to one client, far above 1.5 N/K = 150 samples.
    labels = _labels(10, 1000)
    with pytest.raises(ValueError) as info:
        Dirichlet(num_clients=100, alpha=0.1, size_range=(0.5, 1.5),
                  max_tries=3, seed=0)(labels)
    msg = str(info.value)
    for part in ('partition.size_range=(0.5, 1.5)', 'partition.max_tries=3',
                 'alpha=0.1', '100 clients', '10 classes'):
        assert part in msg, (part, msg)


@pytest.mark.parametrize('bad', [(1.0, 1.5), (0.5, 1.0), (-0.1, 1.5),
                                 (0.8, 0.6), (0.5, float('nan')), (0.5, ),
                                 (0.5, 1.5, 2.0), 'wide', 0.5, (True, 2)])
def test_bad_size_range_is_rejected_naming_the_key(bad):
    with pytest.raises(ValueError, match=r'partition\.size_range'):
        Dirichlet(num_clients=4, alpha=1.0, size_range=bad)
    with pytest.raises(ValueError, match=r'partition\.size_range'):
        build_partition(
            dict(type='Dirichlet', num_clients=4, alpha=1.0,
                 size_range=bad), np.arange(40) % 4)


def test_size_range_accepts_lists_and_arrays():
    assert check_size_range([0, 2]) == (0.0, 2.0)
    assert check_size_range(np.array([0.5, 1.5])) == (0.5, 1.5)
    assert check_size_range(None) is None


def test_balance_and_size_range_exclude_each_other():
    with pytest.raises(ValueError, match='size_range'):
        Dirichlet(num_clients=4, alpha=1.0, balance=True,
                  size_range=(0.5, 1.5))


def test_min_size_still_applies():
    labels = _labels(100, 100)
    part = Dirichlet(num_clients=10, alpha=1.0, size_range=(0.0, 1.5),
                     min_size=900, seed=0)(labels)
    assert part.client_sizes.min() >= 900


def test_closed_clients_receive_nothing():
    # Replays the dealing: once a client holds N / K samples or more, no
    # later class gives it a sample (the rounding remainder of a class
    # included).
    rng = np.random.default_rng(0)
    counts = np.full(200, 7)
    num_clients = 50
    for alpha in (0.05, 1.0):
        props = rng.dirichlet(np.full(num_clients, alpha), size=counts.size)
        order = rng.permutation(counts.size)
        table = _capped_counts(counts, props, order)
        assert (table.sum(axis=1) == counts).all()
        cap = counts.sum() / num_clients
        sizes = np.zeros(num_clients, dtype=np.int64)
        for c in order:
            assert not table[c, sizes >= cap].any()
            sizes += table[c]
