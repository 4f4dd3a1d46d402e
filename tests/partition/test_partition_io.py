"""Partition object: persistence, fingerprint, validation, statistics."""
import json
import math
import os

import numpy as np
import pytest

from decssl_mm.partition import (IID, Dirichlet, Partition, fingerprint_of,
                                 format_table)

from .conftest import make_labels


def test_save_load_roundtrip(tmp_path, labels):
    part = Dirichlet(num_clients=4, alpha=0.5, seed=1)(labels)
    path = tmp_path / 'sub' / 'part.json'
    part.save(str(path))
    assert sorted(os.listdir(tmp_path / 'sub')) == ['part.json']
    loaded = Partition.load(str(path), fingerprint=fingerprint_of(labels))
    assert loaded == part
    data = json.loads(path.read_text())
    assert data['format'] == 'decssl_mm.partition'
    assert data['recipe'] == dict(
        type='Dirichlet',
        params=dict(num_clients=4, alpha=0.5, min_size=1, balance=False,
                    max_tries=100),
        seed=1)
    assert data['client_sizes'] == part.client_sizes.tolist()
    assert data['fingerprint']['num_samples'] == labels.size


def test_save_is_atomic_replace(tmp_path, labels, monkeypatch):
    path = tmp_path / 'part.json'
    IID(num_clients=2)(labels).save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(OSError):
        IID(num_clients=3)(labels).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['part.json']


def test_fingerprint_mismatch_names_file(tmp_path, labels):
    path = tmp_path / 'part.json'
    IID(num_clients=3)(labels).save(path)
    other = labels.copy()
    other[0] = (other[0] + 1) % 10
    with pytest.raises(ValueError) as info:
        Partition.load(str(path), fingerprint=fingerprint_of(other))
    assert str(path) in str(info.value)
    assert 'sha256' in str(info.value)
    with pytest.raises(ValueError, match='num_samples'):
        Partition.load(str(path), fingerprint=fingerprint_of(labels[:-1]))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        Partition.load(str(tmp_path / 'missing.json'))


def test_fingerprint_canonical():
    a = fingerprint_of(np.array([1, 2, 3], dtype=np.int32))
    b = fingerprint_of([1, 2, 3])
    c = fingerprint_of(np.array([1, 2, 3], dtype=object))
    assert a == b == c
    assert fingerprint_of([1, 2, 4]) != a
    s1 = fingerprint_of(np.array(['a', 'bc']))
    s2 = fingerprint_of(['a', 'bc'])
    s3 = fingerprint_of(np.array([b'a', b'bc']))
    assert s1 == s2 == s3 and s1['key_kind'] == 'str'
    assert fingerprint_of(['ab', 'c']) != s1
    assert fingerprint_of([1.0, 2.0])['key_kind'] == 'float'


def test_load_rejects_other_files(tmp_path, labels):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match='bad.json'):
        Partition.load(str(bad))
    broken = tmp_path / 'broken.json'
    broken.write_text('{not json')
    with pytest.raises(ValueError, match='broken.json'):
        Partition.load(str(broken))
    data = IID(num_clients=2)(labels).to_dict()
    data['clients'][1][0] = data['clients'][0][0]
    dup = tmp_path / 'dup.json'
    dup.write_text(json.dumps(data))
    with pytest.raises(ValueError, match='dup.json'):
        Partition.load(str(dup))


def test_validate_detects_problems():
    Partition([[0, 2], [1]], num_samples=4).validate()
    assert Partition([[0, 2], [1]], num_samples=4).dropped == 1
    with pytest.raises(ValueError, match='more than one'):
        Partition([[0, 1], [1]], num_samples=2).validate()
    with pytest.raises(ValueError, match='outside'):
        Partition([[0, 5]], num_samples=3).validate()
    with pytest.raises(ValueError, match='dropped'):
        Partition([[0], [1]], num_samples=3, dropped=0).validate()
    with pytest.raises(ValueError, match='repeated'):
        Partition([[0, 0, 1]], num_samples=2).validate()


def test_partition_api():
    part = Partition({1: [3, 1], 0: [0, 2]}, num_samples=5, recipe={'x': 1})
    assert part.num_clients == len(part) == 2
    assert part.client_sizes.tolist() == [2, 2]
    assert part.indices(1).tolist() == [1, 3]
    assert part.dropped == 1
    assert part.assignment().tolist() == [0, 1, 0, 1, -1]
    with pytest.raises(IndexError):
        part.indices(2)
    with pytest.raises(ValueError):
        part.indices(0)[0] = 7
    assert 'num_clients=2' in repr(part)


def test_stats_definitions():
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    part = Partition([[0, 1], [2, 3, 4, 5], [6, 7], []], num_samples=8)
    stats = part.stats(labels)
    assert stats['histograms'].tolist() == [[2, 0, 0], [0, 2, 2], [1, 1, 0],
                                            [0, 0, 0]]
    assert stats['sizes'].tolist() == [2, 4, 2, 0]
    assert stats['entropy'][0] == 0
    assert stats['entropy'][1] == pytest.approx(math.log(2))
    assert math.isnan(stats['entropy'][3])
    assert stats['mean_entropy'] == pytest.approx(2 * math.log(2) / 3)
    # global distribution (3/8, 3/8, 2/8): CDF (3/8, 6/8, 1)
    # client 0 CDF (1, 1, 1): EMD = 5/8 + 2/8
    assert stats['emd'][0] == pytest.approx(7 / 8)
    # client 1 CDF (0, 1/2, 1): EMD = 3/8 + 2/8
    assert stats['emd'][1] == pytest.approx(5 / 8)
    assert stats['global_entropy'] == pytest.approx(
        -(2 * 3 / 8 * math.log(3 / 8) + 2 / 8 * math.log(2 / 8)))
    table = format_table(stats)
    assert 'entropy' in table and 'EMD' in table
    assert 'empty clients: 1' in table
    lines = table.splitlines()
    assert lines[2].split()[:3] == ['0', '2', '1']


def test_format_table_truncates_rows():
    labels = make_labels(num=1000)
    stats = IID(num_clients=100)(labels).stats(labels)
    table = format_table(stats, max_rows=10)
    assert '...' in table
    assert len(table.splitlines()) < 25
    assert len(format_table(stats, max_rows=None).splitlines()) > 100


def test_stats_rejects_wrong_length(labels):
    part = IID(num_clients=2)(labels)
    with pytest.raises(ValueError, match='labels'):
        part.stats(labels[:-1])
