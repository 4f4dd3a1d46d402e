"""decssl_mm.utils.partition_names: short names parsed and printed."""
import pytest

from decssl_mm.utils.partition_names import (PartitionNameError,
                                             heterogeneity_rank,
                                             parse_partition_name,
                                             partition_name)


@pytest.mark.parametrize('name, expected', [
    ('iid', dict(type='IID')),
    ('dir0.1', dict(type='Dirichlet', alpha=0.1)),
    ('skew0.5', dict(type='Skew', ratio=0.5)),
    ('shards2', dict(type='Shards', shards_per_client=2)),
    ('patho3', dict(type='Pathological', classes_per_client=3)),
])
def test_parse_and_print_round_trip(name, expected):
    part = parse_partition_name(name)
    assert part == expected
    assert partition_name(part) == name
    assert parse_partition_name(partition_name(part)) == part


def test_parse_keeps_clients_seed_and_dirichlet_settings():
    current = dict(type='Dirichlet', alpha=1.0, num_clients=20, seed=3,
                   min_size=16)
    assert parse_partition_name('Dirichlet0.02', current) == dict(
        type='Dirichlet', alpha=0.02, num_clients=20, seed=3, min_size=16)
    assert parse_partition_name('iid', current) == dict(
        type='IID', num_clients=20, seed=3)


def test_unknown_names_list_the_forms():
    with pytest.raises(PartitionNameError, match="'foo'.*dir<alpha>"):
        parse_partition_name('foo')
    assert partition_name(dict(type='MyPartitioner')) == 'MyPartitioner'
    assert partition_name(None) is None


def test_heterogeneity_order():
    names = ['dir0.02', 'skew0', 'iid', 'dir1', 'skew0.5', 'other']
    assert sorted(names, key=heterogeneity_rank) == [
        'iid', 'dir1', 'dir0.02', 'skew0.5', 'skew0', 'other']
