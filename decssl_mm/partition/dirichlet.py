"""Label-Dirichlet partitioner (per-class client shares ~ Dir(alpha))."""
import math
import numbers
from typing import Optional, Sequence, Tuple

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import (check_int, check_positive_float, encode_keys,
                    group_assignment, group_by_class, split_by_proportions)

__all__ = ['Dirichlet', 'dirichlet_assignment', 'check_size_range']

#: Draws tried by default: the plain draw (``min_size`` only) and the
#: paper's draw (``size_range``, 1000 attempts as in the paper).
DEFAULT_MAX_TRIES = 100
DEFAULT_MAX_TRIES_SIZE_RANGE = 1000


def check_size_range(value,
                     name: str = 'partition.size_range'
                     ) -> Optional[Tuple[float, float]]:
    """Check ``(low, high)`` client-size bounds in units of ``N / K``.

    Args:
        value: ``None`` or a pair of real numbers with
            ``0 <= low < 1 < high``.
        name (str): Config key used in the error message.
            Defaults to ``'partition.size_range'``.

    Returns:
        tuple[float, float] | None: ``(low, high)`` as floats, or None.
    """
    if value is None:
        return None
    rule = (f'{name} must be a pair (low, high) of fractions of N / K with '
            '0 <= low < 1 < high, e.g. (0.5, 1.5)')
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) \
            and not isinstance(value, np.ndarray):
        raise ValueError(f'{rule}; got {value!r}')
    items = list(value)
    if len(items) != 2 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool)
            for v in items):
        raise ValueError(f'{rule}; got {value!r}')
    low, high = float(items[0]), float(items[1])
    if not (math.isfinite(low) and math.isfinite(high)
            and 0 <= low < 1 < high):
        raise ValueError(f'{rule}; got {value!r}')
    return low, high


def _split_open(total: int, share: np.ndarray,
                open_: np.ndarray) -> np.ndarray:
    """Split ``total`` items over the open clients by their shares.

    Only the open clients take part in the cut, so the rounding remainder
    of the cumulative cut also lands on an open client. When the shares of
    all open clients are zero (underflow at tiny ``alpha``) the split is
    uniform over them.

    Args:
        total (int): Number of samples of the class.
        share (np.ndarray): ``(K,)`` Dirichlet shares of all clients.
        open_ (np.ndarray): Indices of the clients that may still receive
            samples (non-empty).

    Returns:
        np.ndarray: ``(K,)`` ``int64`` counts, zero for closed clients.
    """
    part = share[open_]
    mass = part.sum()
    part = part / mass if mass > 0 else np.full(open_.size, 1 / open_.size)
    row = np.zeros(share.size, dtype=np.int64)
    row[open_] = split_by_proportions(
        np.asarray([total], dtype=np.int64), part[None])[0]
    return row


def _capped_counts(class_counts: np.ndarray, proportions: np.ndarray,
                   class_order: np.ndarray) -> np.ndarray:
    """Per-class client counts where full clients receive nothing more.

    Classes are dealt in ``class_order``; before dealing a class, every
    client that already holds ``N / K`` samples or more is closed and the
    class is split over the open clients by their renormalized shares.

    Args:
        class_counts (np.ndarray): ``(C,)`` samples per class.
        proportions (np.ndarray): ``(C, K)`` Dirichlet shares.
        class_order (np.ndarray): Order in which the classes are dealt.

    Returns:
        np.ndarray: ``(C, K)`` ``int64`` counts.
    """
    num_classes, num_clients = proportions.shape
    cap = class_counts.sum() / num_clients
    sizes = np.zeros(num_clients, dtype=np.int64)
    table = np.zeros((num_classes, num_clients), dtype=np.int64)
    for c in class_order:
        open_ = np.flatnonzero(sizes < cap)
        table[c] = _split_open(int(class_counts[c]), proportions[c], open_)
        sizes += table[c]
    return table


def _size_bounds(num: int, num_clients: int, min_size: int,
                 size_range: Optional[Tuple[float, float]]
                 ) -> Tuple[int, float]:
    """Smallest and largest acceptable client sizes of a draw."""
    if size_range is None:
        return min_size, math.inf
    mean = num / num_clients
    return (max(min_size, math.ceil(size_range[0] * mean)),
            size_range[1] * mean)


def dirichlet_assignment(codes: np.ndarray,
                         num_classes: int,
                         num_clients: int,
                         alpha: float,
                         rng: np.random.Generator,
                         min_size: int = 1,
                         balance: bool = False,
                         max_tries: Optional[int] = None,
                         size_range: Optional[Tuple[float, float]] = None
                         ) -> np.ndarray:
    """Client id of every sample under the label-Dirichlet scheme.

    Args:
        codes (np.ndarray): Dense class code ``0..C-1`` of every sample.
        num_classes (int): Number of classes ``C``.
        num_clients (int): Number of clients ``K``.
        alpha (float): Dirichlet concentration (> 0).
        rng (np.random.Generator): Random source.
        min_size (int): Smallest acceptable client size. Defaults to 1.
        balance (bool): Stop giving samples to clients holding ``N / K`` or
            more, classes in random order. Defaults to False.
        max_tries (int, optional): Number of draws before giving up.
            Defaults to 100, or 1000 with ``size_range``.
        size_range (tuple[float, float], optional): The paper's draw:
            classes dealt in label order with clients closed at ``N / K``,
            redrawn until every client holds between ``low * N / K`` and
            ``high * N / K`` samples. Defaults to None (plain draw).

    Returns:
        np.ndarray: ``(N,)`` ``int64`` client ids.
    """
    num = codes.size
    size_range = check_size_range(size_range)
    if max_tries is None:
        max_tries = (DEFAULT_MAX_TRIES if size_range is None else
                     DEFAULT_MAX_TRIES_SIZE_RANGE)
    if min_size * num_clients > num:
        raise ValueError(
            f'min_size={min_size} is impossible: {num_clients} clients x '
            f'{min_size} > {num} samples')
    low, high = _size_bounds(num, num_clients, min_size, size_range)
    order, class_counts = group_by_class(codes, num_classes, rng)
    concentration = np.full(num_clients, alpha, dtype=np.float64)
    sizes = np.zeros(num_clients, dtype=np.int64)
    for _ in range(max_tries):
        proportions = rng.dirichlet(concentration, size=num_classes)
        if size_range is not None:
            table = _capped_counts(class_counts, proportions,
                                   np.arange(num_classes))
        elif balance:
            table = _capped_counts(class_counts, proportions,
                                   rng.permutation(num_classes))
        else:
            table = split_by_proportions(class_counts, proportions)
        sizes = table.sum(axis=0)
        if sizes.min() >= low and sizes.max() <= high:
            break
    else:
        raise ValueError(
            _failure_message(num, num_classes, num_clients, alpha, min_size,
                             max_tries, size_range, sizes))
    owner = np.tile(np.arange(num_clients, dtype=np.int64), num_classes)
    assign = np.empty(num, dtype=np.int64)
    assign[order] = np.repeat(owner, table.ravel())
    return assign


def _failure_message(num: int, num_classes: int, num_clients: int,
                     alpha: float, min_size: int, max_tries: int,
                     size_range: Optional[Tuple[float, float]],
                     sizes: np.ndarray) -> str:
    """The error of a draw that found no acceptable split."""
    setting = (f'alpha={alpha}, {num_clients} clients, {num_classes} '
               f'classes and {num} samples')
    if size_range is None:
        return (f'Dirichlet could not give every client min_size={min_size} '
                f'samples in max_tries={max_tries} draws (the smallest '
                f'client got {int(sizes.min())}) with {setting}; raise '
                'alpha, use balance=True, lower min_size or num_clients, or '
                'raise max_tries')
    low, high = _size_bounds(num, num_clients, min_size, size_range)
    return (f'Dirichlet (paper draw) found no split with every client '
            f'between {low} and {high:g} samples (partition.size_range='
            f'{tuple(size_range)} x N/K={num / num_clients:g}, '
            f'min_size={min_size}) in partition.max_tries={max_tries} '
            f'draws with {setting}; the last draw gave sizes '
            f'{int(sizes.min())}..{int(sizes.max())}. Raise alpha, widen '
            'size_range, use fewer clients or more classes, or raise '
            'max_tries')


@PARTITIONERS.register_module()
class Dirichlet(BasePartitioner):
    """Label-skewed split: each class is shared out by Dirichlet proportions.

    For every class ``c`` a vector ``p_c ~ Dir(alpha * 1_K)`` is drawn and the
    (shuffled) samples of ``c`` are cut into ``K`` consecutive runs of sizes
    ``floor(cumsum(p_c) * n_c)`` differences, so every sample is assigned and
    no sample is dropped. Small ``alpha`` (0.01-0.1) gives clients few
    dominant classes; large ``alpha`` (100+) approaches IID.

    Two draws are available:

    - the default draw (``size_range=None``): label plus quantity skew.
      Client sizes follow the draw; ``balance=True`` adds self-balancing
      (classes dealt in random order, a client that already holds ``N / K``
      samples receives nothing from later classes). If some client ends up
      with fewer than ``min_size`` samples the whole draw is repeated.
    - the paper's draw (``size_range=(low, high)``, the paper uses
      ``(0.5, 1.5)``): classes are dealt in label order, a client that
      already holds ``N / K`` samples or more gets share 0 of every later
      class (the others are renormalized), and the whole partition is
      redrawn until every client holds between ``low * N / K`` and
      ``high * N / K`` samples (and at least ``min_size``).

    A draw is repeated up to ``max_tries`` times; after that a ValueError
    names the parameters to change (no draw outside the bounds is kept).
    ``min_size * num_clients > N`` is rejected at once.

    Args:
        num_clients (int): Number of clients ``K``.
        alpha (float): Dirichlet concentration, > 0.
        min_size (int): Smallest acceptable client size, >= 0.
            Defaults to 1.
        balance (bool): Enable self-balancing of the default draw.
            Defaults to False.
        max_tries (int, optional): Maximum number of draws, >= 1.
            Defaults to 100, or 1000 (as in the paper) with ``size_range``.
        size_range (tuple[float, float], optional): ``(low, high)`` client
            size bounds in units of ``N / K``, ``0 <= low < 1 < high``;
            selects the paper's draw. Defaults to None.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self,
                 num_clients: int,
                 alpha: float,
                 min_size: int = 1,
                 balance: bool = False,
                 max_tries: Optional[int] = None,
                 size_range: Optional[Sequence[float]] = None,
                 seed: int = 0):
        self.size_range = check_size_range(size_range)
        super().__init__(num_clients, seed)
        self.alpha = check_positive_float(alpha, 'alpha')
        self.min_size = check_int(min_size, 'min_size', minimum=0)
        if not isinstance(balance, (bool, np.bool_)):
            raise ValueError(f'balance must be a bool, got {balance!r}')
        self.balance = bool(balance)
        if self.balance and self.size_range is not None:
            raise ValueError(
                'partition.balance=True and partition.size_range exclude '
                'each other: the size_range draw already closes clients at '
                'N / K; drop balance')
        if max_tries is None:
            max_tries = (DEFAULT_MAX_TRIES if self.size_range is None else
                         DEFAULT_MAX_TRIES_SIZE_RANGE)
        self.max_tries = check_int(max_tries, 'max_tries', minimum=1)

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`.

        ``size_range`` is listed (as a list, as JSON stores it) only when
        set, so recipes of the default draw are unchanged.
        """
        out = dict(
            num_clients=self.num_clients,
            alpha=self.alpha,
            min_size=self.min_size,
            balance=self.balance,
            max_tries=self.max_tries)
        if self.size_range is not None:
            out['size_range'] = list(self.size_range)
        return out

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        classes, codes = encode_keys(keys)
        assign = dirichlet_assignment(
            codes,
            classes.size,
            self.num_clients,
            self.alpha,
            self.make_rng(),
            min_size=self.min_size,
            balance=self.balance,
            max_tries=self.max_tries,
            size_range=self.size_range)
        clients, dropped = group_assignment(assign, self.num_clients)
        return self._make_partition(clients, keys, dropped)
