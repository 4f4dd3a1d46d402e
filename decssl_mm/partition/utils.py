"""Vectorized numpy helpers shared by the partitioners.

Nothing here touches images, tensors or registries: every function works on
1-D key arrays and integer count arrays, so a partition of millions of samples
is a handful of ``argsort``/``bincount``/``repeat`` calls.
"""
import numbers
from typing import List, Optional, Tuple

import numpy as np

__all__ = [
    'as_key_array', 'encode_keys', 'group_by_class', 'group_assignment',
    'apportion', 'split_by_proportions', 'check_int', 'check_positive_float'
]


def check_int(value, name: str, minimum: Optional[int] = None) -> int:
    """Check that ``value`` is an integer (not a bool) >= ``minimum``.

    Args:
        value: The value to check.
        name (str): Argument name used in the error message.
        minimum (int, optional): Smallest allowed value. Defaults to None.

    Returns:
        int: ``value`` as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f'{name} must be an integer, got {value!r} '
                         f'({type(value).__name__})')
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    return value


def check_positive_float(value, name: str) -> float:
    """Check that ``value`` is a finite real number > 0.

    Args:
        value: The value to check.
        name (str): Argument name used in the error message.

    Returns:
        float: ``value`` as a Python float.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{name} must be a number > 0, got {value!r}')
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be a finite number > 0, got {value}')
    return value


def as_key_array(keys, name: str = 'labels') -> np.ndarray:
    """Convert ``keys`` to a non-empty 1-D numpy array.

    Object arrays whose items are all integers become ``int64``; any other
    object array (e.g. mixed strings) becomes a unicode array.

    Args:
        keys (array-like): One key (label, client id, ...) per sample.
        name (str): Argument name used in error messages.
            Defaults to ``'labels'``.

    Returns:
        np.ndarray: The keys as a 1-D array.
    """
    if keys is None:
        raise ValueError(f'{name} must be a 1-D array of keys, got None')
    arr = np.asarray(keys)
    if arr.ndim != 1:
        raise ValueError(f'{name} must be a 1-D array (one key per sample), '
                         f'got shape {arr.shape}')
    if arr.size == 0:
        raise ValueError(f'{name} is empty: there are no samples to split')
    if arr.dtype.kind == 'O':
        items = arr.tolist()
        if all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
               for x in items):
            arr = np.asarray(items, dtype=np.int64)
        else:
            arr = np.asarray([str(x) for x in items])
    elif arr.dtype.kind == 'S':
        arr = np.char.decode(arr, 'utf-8')
    elif arr.dtype.kind == 'b':
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in 'iufU':
        raise ValueError(f'{name} has unsupported dtype {arr.dtype}; use '
                         'integers, floats or strings')
    return arr


def encode_keys(keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Map keys to dense codes ``0..C-1`` in sorted key order.

    Non-negative integer keys of moderate range use a lookup table (linear
    time); anything else falls back to :func:`numpy.unique`.

    Args:
        keys (np.ndarray): 1-D key array (see :func:`as_key_array`).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(classes, codes)`` where ``classes``
        holds the sorted distinct keys and ``codes[i]`` is the position of
        ``keys[i]`` in ``classes`` (``int64``).
    """
    if keys.dtype.kind in 'iu' and keys.size:
        lo, hi = int(keys.min()), int(keys.max())
        if lo >= 0 and hi < max(4 * keys.size, 1 << 20):
            small = keys.astype(np.int64, copy=False)
            present = np.bincount(small, minlength=hi + 1) > 0
            lut = np.cumsum(present) - 1
            classes = np.flatnonzero(present).astype(keys.dtype)
            return classes, lut[small]
    classes, codes = np.unique(keys, return_inverse=True)
    return classes, codes.reshape(-1).astype(np.int64)


def group_by_class(codes: np.ndarray, num_classes: int,
                   rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Group sample indices by class, shuffled within every class.

    Args:
        codes (np.ndarray): Dense class code per sample.
        num_classes (int): Number of classes ``C``.
        rng (np.random.Generator): Source of the within-class shuffle.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(order, counts)``: ``order`` lists
        all sample indices, class 0 first, each class in random order;
        ``counts[c]`` is the number of samples of class ``c``.
    """
    perm = rng.permutation(codes.size)
    order = perm[np.argsort(_small_int(codes[perm]), kind='stable')]
    counts = np.bincount(codes, minlength=num_classes)
    return order, counts


def _small_int(values: np.ndarray) -> np.ndarray:
    """Cast non-negative codes to the smallest dtype (radix-sortable)."""
    top = int(values.max()) if values.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype, copy=False)
    return values


def group_assignment(assign: np.ndarray,
                     num_clients: int) -> Tuple[List[np.ndarray], int]:
    """Turn a per-sample client id array into per-client index arrays.

    Args:
        assign (np.ndarray): ``assign[i]`` is the client of sample ``i`` or
            ``-1`` when the sample is dropped.
        num_clients (int): Number of clients ``K``.

    Returns:
        tuple[list[np.ndarray], int]: Sorted ``int64`` index arrays, one per
        client, and the number of dropped samples.
    """
    assign = np.asarray(assign, dtype=np.int64)
    kept = assign >= 0
    dropped = int(assign.size - np.count_nonzero(kept))
    if dropped:
        index = np.flatnonzero(kept)
        owner = assign[index]
    else:
        index = None
        owner = assign
    sizes = np.bincount(owner, minlength=num_clients)
    if sizes.size > num_clients:
        raise ValueError(f'client id {sizes.size - 1} out of range for '
                         f'num_clients={num_clients}')
    order = np.argsort(_small_int(owner), kind='stable')
    if index is not None:
        order = index[order]
    return np.split(order.astype(np.int64, copy=False),
                    np.cumsum(sizes)[:-1]), dropped


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` items into integer parts proportional to ``weights``.

    Largest-remainder rounding: every part is the floor of its exact share,
    and the leftover items go to the largest fractional parts (ties to the
    lower index), so the parts always sum to ``total``.

    Args:
        total (int): Number of items to split.
        weights (np.ndarray): Non-negative weights, not all zero.

    Returns:
        np.ndarray: ``int64`` parts, ``parts.sum() == total``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    share = weights / weights.sum() * total
    parts = np.floor(share).astype(np.int64)
    rest = int(total - parts.sum())
    if rest > 0:
        order = np.argsort(-(share - parts), kind='stable')
        parts[order[:rest]] += 1
    return parts


def split_by_proportions(totals: np.ndarray,
                         proportions: np.ndarray) -> np.ndarray:
    """Split every row total by its row of proportions (vectorized).

    Row ``c`` is cut at ``floor(cumsum(proportions[c]) * totals[c])``, i.e.
    the cumulative shares are rounded down, so the counts of a row always
    sum to ``totals[c]`` and differ from the exact share by less than one.

    Args:
        totals (np.ndarray): ``(C,)`` integer totals.
        proportions (np.ndarray): ``(C, K)`` rows of non-negative numbers
            summing to 1.

    Returns:
        np.ndarray: ``(C, K)`` ``int64`` counts.
    """
    totals = np.asarray(totals, dtype=np.int64)
    cum = np.cumsum(proportions, axis=1)
    cuts = np.floor(cum * totals[:, None]).astype(np.int64)
    np.minimum(cuts, totals[:, None], out=cuts)
    cuts[:, -1] = totals
    counts = np.diff(cuts, axis=1, prepend=0)
    return counts
