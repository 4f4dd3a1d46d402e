"""NaturalId: one client per id, grouping, ignored ids."""
import numpy as np
import pytest

from decssl_mm.partition import NaturalId


def test_one_client_per_id_sorted():
    keys = np.array([7, 3, 7, 9, 3, 3, 9, 7])
    part = NaturalId()(keys)
    assert part.num_clients == 3
    for k, key in enumerate([3, 7, 9]):
        assert part.indices(k).tolist() == np.flatnonzero(keys == key).tolist()


def test_string_ids():
    keys = np.array(['robot-b', 'robot-a', 'robot-c', 'robot-a'])
    part = NaturalId()(keys)
    assert part.indices(0).tolist() == [1, 3]
    assert part.indices(1).tolist() == [0]
    assert NaturalId().groups(keys) == [['robot-a'], ['robot-b'],
                                        ['robot-c']]
    mixed = np.array(['a', 1, 'b', 1], dtype=object)
    assert NaturalId()(mixed).num_clients == 3


def test_contiguous_grouping():
    keys = np.repeat(np.arange(10), 3)
    nat = NaturalId(num_clients=3, group='contiguous')
    assert nat.groups(keys) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    part = nat(keys)
    assert part.client_sizes.tolist() == [12, 9, 9]
    assert part.indices(1).tolist() == list(range(12, 21))


def test_random_grouping_is_seeded():
    keys = np.repeat(np.arange(12), 2)
    a = NaturalId(num_clients=4, group='random', seed=1).groups(keys)
    b = NaturalId(num_clients=4, group='random', seed=1).groups(keys)
    c = NaturalId(num_clients=4, group='random', seed=2).groups(keys)
    assert a == b and a != c
    assert sorted(sum(a, [])) == list(range(12))
    assert all(len(g) == 3 for g in a)


def test_balanced_grouping_evens_sizes():
    keys = np.repeat(np.arange(6), [50, 40, 30, 20, 10, 10])
    part = NaturalId(num_clients=2, group='balanced')(keys)
    assert sorted(part.client_sizes.tolist()) == [80, 80]
    groups = NaturalId(num_clients=2, group='balanced').groups(keys)
    assert sorted(sum(groups, [])) == list(range(6))


def test_ignore_keys_are_dropped():
    keys = np.array([-1, 2, 2, 5, -1, 5, 5])
    part = NaturalId(ignore_keys=[-1])(keys)
    assert part.num_clients == 2
    assert part.dropped == 2
    part.validate()
    assert part.indices(0).tolist() == [1, 2]


def test_grouping_errors_name_argument():
    keys = np.repeat(np.arange(5), 2)
    with pytest.raises(ValueError, match='group'):
        NaturalId(num_clients=3)(keys)
    with pytest.raises(ValueError, match='num_clients'):
        NaturalId(num_clients=6, group='contiguous')(keys)
    with pytest.raises(ValueError, match='group'):
        NaturalId(group='by-size')
    with pytest.raises(ValueError, match='ignore_keys'):
        NaturalId(ignore_keys=list(range(5)))(keys)
    with pytest.raises(ValueError, match='ignore_keys'):
        NaturalId(ignore_keys='abc')
