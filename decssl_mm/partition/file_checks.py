"""Checks of a parsed partition file before anything is built from it.

A partition JSON file is read from disk and may be damaged or hand-edited.
:func:`check_partition_data` looks at every field's type and range and
raises a :class:`ValueError` naming the file and the field. It allocates
nothing proportional to a number written in the file (``num_samples``,
``dropped``, an index): only arrays as large as the file's own lists.
"""
import numbers
from typing import Any, List, Optional

import numpy as np

__all__ = ['check_partition_data', 'unique_overlap', 'MAX_NUM_SAMPLES']

#: Largest ``num_samples`` a partition file may declare (the ``int64``
#: indices and the counts derived from it stay far from overflow).
MAX_NUM_SAMPLES = 2**53

#: Keys of the ``fingerprint`` field and the Python type of each value.
_FINGERPRINT_FIELDS = dict(num_samples=int, key_kind=str, sha256=str)


def _field_error(source: str, field: str, problem: str) -> ValueError:
    return ValueError(f'{source}: field {field!r} {problem}')


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_count(value: Any, source: str, field: str,
                 maximum: int) -> int:
    """Check a non-negative integer count bounded by ``maximum``."""
    if not _is_int(value):
        raise _field_error(
            source, field,
            f'must be an integer, got {type(value).__name__} '
            f'{_short(value)}')
    if not 0 <= value <= maximum:
        raise _field_error(source, field,
                           f'must lie in [0, {maximum}], got {value}')
    return int(value)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def _check_client(values: Any, source: str, client: int,
                  num_samples: int) -> None:
    """Check the index list of one client without trusting its items."""
    field = f'clients[{client}]'
    if not isinstance(values, list):
        raise _field_error(source, field,
                           'must be a list of sample indices, got '
                           f'{type(values).__name__}')
    if not values:
        return
    bad = next((v for v in values if not _is_int(v)), None)
    if bad is not None:
        raise _field_error(
            source, field, 'must hold integer sample indices only, got '
            f'{type(bad).__name__} {_short(bad)}')
    low, high = min(values), max(values)
    if low < 0 or high >= num_samples:
        raise _field_error(
            source, field,
            f'holds index {low if low < 0 else high} outside '
            f'[0, {num_samples}) (num_samples)')


def _check_clients(clients: Any, source: str, num_samples: int) -> None:
    if not isinstance(clients, list):
        raise _field_error(
            source, 'clients',
            'must be a list with one index list per client, got '
            f'{type(clients).__name__} {_short(clients)}')
    if not clients:
        raise _field_error(source, 'clients', 'holds no client')
    for k, values in enumerate(clients):
        _check_client(values, source, k, num_samples)
    total = sum(len(values) for values in clients)
    if total > num_samples:
        raise _field_error(
            source, 'clients', f'hold {total} indices in all, more than '
            f'num_samples={num_samples}')


def _check_fingerprint(fingerprint: Any, source: str,
                       num_samples: int) -> None:
    if fingerprint is None:
        return
    if not isinstance(fingerprint, dict):
        raise _field_error(
            source, 'fingerprint', 'must be an object or null, got '
            f'{type(fingerprint).__name__} {_short(fingerprint)}')
    for key, kind in _FINGERPRINT_FIELDS.items():
        value = fingerprint.get(key)
        ok = _is_int(value) if kind is int else isinstance(value, kind)
        if not ok:
            raise _field_error(
                source, f'fingerprint.{key}',
                f'must be a {kind.__name__}, got {type(value).__name__} '
                f'{_short(value)}')
    if fingerprint['num_samples'] != num_samples:
        raise _field_error(
            source, 'fingerprint.num_samples',
            f'is {fingerprint["num_samples"]} but num_samples is '
            f'{num_samples}')


def _check_optional_list_of_counts(values: Any, source: str, field: str,
                                   length: int, maximum: int) -> None:
    if values is None:
        return
    if not isinstance(values, list) or len(values) != length:
        raise _field_error(source, field,
                           f'must be a list of {length} integers')
    for i, value in enumerate(values):
        _check_count(value, source, f'{field}[{i}]', maximum)


def check_partition_data(data: Any,
                         source: str = 'partition',
                         max_num_samples: Optional[int] = None) -> None:
    """Check the fields of a parsed partition file.

    Args:
        data (Any): The object parsed from the JSON file (format and version
            already checked by the caller).
        source (str): What to name in messages, e.g. ``"partition file
            'p.json'"``. Defaults to ``'partition'``.
        max_num_samples (int, optional): Largest ``num_samples`` accepted.
            Defaults to :data:`MAX_NUM_SAMPLES`.

    Raises:
        ValueError: Naming ``source`` and the offending field.
    """
    maximum = MAX_NUM_SAMPLES if max_num_samples is None else max_num_samples
    num_samples = _check_count(
        data.get('num_samples'), source, 'num_samples', maximum)
    _check_clients(data.get('clients'), source, num_samples)
    clients: List[list] = data['clients']
    if data.get('dropped') is not None:
        _check_count(data['dropped'], source, 'dropped', num_samples)
    if data.get('num_clients') is not None:
        num_clients = _check_count(data['num_clients'], source,
                                   'num_clients', maximum)
        if num_clients != len(clients):
            raise _field_error(
                source, 'num_clients',
                f'is {num_clients} but clients holds {len(clients)} lists')
    _check_optional_list_of_counts(
        data.get('client_sizes'), source, 'client_sizes', len(clients),
        num_samples)
    sizes = data.get('client_sizes')
    if sizes is not None and sizes != [len(v) for v in clients]:
        raise _field_error(source, 'client_sizes',
                           'differs from the lengths of the clients lists')
    recipe = data.get('recipe')
    if recipe is not None and not isinstance(recipe, dict):
        raise _field_error(
            source, 'recipe', 'must be an object or null, got '
            f'{type(recipe).__name__} {_short(recipe)}')
    _check_fingerprint(data.get('fingerprint'), source, num_samples)


def unique_overlap(clients: List[np.ndarray]) -> Optional[int]:
    """First sample index held by two clients, or None.

    Costs memory proportional to the number of listed indices only.

    Args:
        clients (list[np.ndarray]): Sorted, unique index array per client.

    Returns:
        int | None: The smallest index listed twice.
    """
    if not clients:
        return None
    flat = np.sort(np.concatenate(clients))
    repeated = np.flatnonzero(flat[1:] == flat[:-1])
    return int(flat[repeated[0]]) if repeated.size else None
