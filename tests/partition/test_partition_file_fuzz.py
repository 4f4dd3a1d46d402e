"""A malformed partition file is a ValueError naming the file and field.

Each case is a valid file with one field replaced by a hostile value; none
may raise anything but a ValueError, and none may allocate memory
proportional to a number written in the file.
"""
import json
import random
import tracemalloc

import numpy as np
import pytest

from decssl_mm.partition import IID, Partition

#: Peak memory a load may take on these small files (bytes).
PEAK_LIMIT = 64 * 2**20


def _valid() -> dict:
    labels = np.arange(20) % 4
    return IID(num_clients=3)(labels).to_dict()


def _deep(depth: int = 100000) -> str:
    return '[' * depth + ']' * depth


#: (field path, hostile JSON text, field the message must name)
CASES = [
    (('clients', ), '{"0": [0], "1": [1]}', 'clients'),
    (('clients', ), 'null', 'clients'),
    (('clients', ), '7', 'clients'),
    (('clients', ), '[]', 'clients'),
    (('clients', 0), '[1e30]', 'clients[0]'),
    (('clients', 0), '[100000000000000000000000000000]', 'clients[0]'),
    (('clients', 0), '[-1]', 'clients[0]'),
    (('clients', 0), '[true]', 'clients[0]'),
    (('clients', 0), '["3"]', 'clients[0]'),
    (('clients', 0), '[[1, 2]]', 'clients[0]'),
    (('clients', 0), '{"a": 1}', 'clients[0]'),
    (('clients', 0), '[20]', 'clients[0]'),
    (('fingerprint', ), '"abc"', 'fingerprint'),
    (('fingerprint', ), '[1]', 'fingerprint'),
    (('fingerprint', 'num_samples'), '"20"', 'fingerprint.num_samples'),
    (('fingerprint', 'num_samples'), '21', 'fingerprint.num_samples'),
    (('fingerprint', 'sha256'), '5', 'fingerprint.sha256'),
    (('num_samples', ), '1e13', 'num_samples'),
    (('num_samples', ), '-5', 'num_samples'),
    (('num_samples', ), '"20"', 'num_samples'),
    (('num_samples', ), 'null', 'num_samples'),
    (('num_samples', ), '1' + '0' * 40, 'num_samples'),
    (('num_samples', ), '3', 'clients[0]'),
    (('dropped', ), '"x"', 'dropped'),
    (('dropped', ), '-1', 'dropped'),
    (('num_clients', ), '2', 'num_clients'),
    (('client_sizes', ), '[1, 2]', 'client_sizes'),
    (('client_sizes', ), '[100, 0, 0]', 'client_sizes'),
    (('recipe', ), '"IID"', 'recipe'),
]


def _write(tmp_path, data: dict, path: tuple, text: str):
    """Write ``data`` with the value at ``path`` replaced by ``text``."""
    marker = '"@@HOSTILE@@"'
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = '@@HOSTILE@@'
    file = tmp_path / 'part.json'
    file.write_text(json.dumps(data).replace(marker, text))
    return file


def _load_small(file) -> None:
    tracemalloc.start()
    try:
        Partition.load(str(file))
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f'{file} took {peak} bytes to load'


@pytest.mark.parametrize('path,text,field', CASES)
def test_malformed_field_names_file_and_field(tmp_path, path, text, field):
    file = _write(tmp_path, _valid(), path, text)
    with pytest.raises(ValueError) as info:
        _load_small(file)
    message = str(info.value)
    assert 'part.json' in message
    assert repr(field) in message or field in message


def test_deeply_nested_file(tmp_path):
    file = _write(tmp_path, _valid(), ('clients', ), _deep())
    with pytest.raises(ValueError, match='part.json'):
        _load_small(file)


def test_huge_num_samples_without_fingerprint_allocates_nothing(tmp_path):
    data = _valid()
    data['fingerprint'] = None
    data['num_samples'] = 10**13
    data['dropped'] = None
    file = tmp_path / 'part.json'
    file.write_text(json.dumps(data))
    tracemalloc.start()
    try:
        part = Partition.load(str(file))
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert part.num_samples == 10**13 and peak < PEAK_LIMIT


HOSTILE = [
    'null', 'true', '-1', '0', '1e30', '1e13', '"x"', '{}', '{"0": [1]}',
    '[]', '[[]]', '[null]', '[1.5]', '[-3]', '[1e300]', '"' + 'a' * 100 + '"',
    '9' * 30, '[' * 50 + ']' * 50
]


@pytest.mark.parametrize('seed', range(60))
def test_fuzz_partition_files(tmp_path, seed):
    """Random fields replaced by random hostile values: ValueError only."""
    rng = random.Random(seed)
    data = _valid()
    paths = [('num_samples', ), ('clients', ), ('dropped', ),
             ('num_clients', ), ('client_sizes', ), ('recipe', ),
             ('fingerprint', ), ('fingerprint', 'num_samples'),
             ('fingerprint', 'key_kind'), ('clients', 0), ('clients', 2),
             ('client_sizes', 1), ('format', ), ('version', )]
    path = rng.choice(paths)
    text = rng.choice(HOSTILE)
    file = _write(tmp_path, data, path, text)
    try:
        _load_small(file)
    except ValueError as e:
        assert 'part.json' in str(e)
