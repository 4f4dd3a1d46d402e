"""Label-Dirichlet partitioner (per-class client shares ~ Dir(alpha))."""
from typing import Optional

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition
from .utils import (check_int, check_positive_float, encode_keys,
                    group_assignment, group_by_class, split_by_proportions)

__all__ = ['Dirichlet', 'dirichlet_assignment']


def _balanced_counts(class_counts: np.ndarray, num_clients: int,
                     proportions: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Per-class client counts where full clients receive nothing more.

    Classes are dealt in a random order; before dealing a class, the share of
    every client that already holds ``N / K`` samples or more is set to zero
    and the remaining shares are renormalized (uniform over the non-full
    clients if all their shares are zero).
    """
    num_classes = class_counts.size
    cap = class_counts.sum() / num_clients
    sizes = np.zeros(num_clients, dtype=np.int64)
    table = np.zeros((num_classes, num_clients), dtype=np.int64)
    for c in rng.permutation(num_classes):
        open_ = sizes < cap
        share = proportions[c] * open_
        total = share.sum()
        if total <= 0:
            share, total = open_.astype(np.float64), float(open_.sum())
        row = split_by_proportions(class_counts[c:c + 1],
                                   (share / total)[None])[0]
        table[c] = row
        sizes += row
    return table


def dirichlet_assignment(codes: np.ndarray,
                         num_classes: int,
                         num_clients: int,
                         alpha: float,
                         rng: np.random.Generator,
                         min_size: int = 1,
                         balance: bool = False,
                         max_tries: int = 100) -> np.ndarray:
    """Client id of every sample under the label-Dirichlet scheme.

    Args:
        codes (np.ndarray): Dense class code ``0..C-1`` of every sample.
        num_classes (int): Number of classes ``C``.
        num_clients (int): Number of clients ``K``.
        alpha (float): Dirichlet concentration (> 0).
        rng (np.random.Generator): Random source.
        min_size (int): Smallest acceptable client size. Defaults to 1.
        balance (bool): Stop giving samples to clients holding ``N / K`` or
            more. Defaults to False.
        max_tries (int): Number of draws before giving up on ``min_size``.
            Defaults to 100.

    Returns:
        np.ndarray: ``(N,)`` ``int64`` client ids.
    """
    num = codes.size
    if min_size * num_clients > num:
        raise ValueError(
            f'min_size={min_size} is impossible: {num_clients} clients x '
            f'{min_size} > {num} samples')
    order, class_counts = group_by_class(codes, num_classes, rng)
    concentration = np.full(num_clients, alpha, dtype=np.float64)
    smallest = 0
    for _ in range(max_tries):
        proportions = rng.dirichlet(concentration, size=num_classes)
        if balance:
            table = _balanced_counts(class_counts, num_clients, proportions,
                                     rng)
        else:
            table = split_by_proportions(class_counts, proportions)
        smallest = int(table.sum(axis=0).min())
        if smallest >= min_size:
            break
    else:
        raise ValueError(
            f'Dirichlet could not give every client min_size={min_size} '
            f'samples in max_tries={max_tries} draws (the smallest client '
            f'got {smallest}) with alpha={alpha}, {num_clients} clients, '
            f'{num_classes} classes and {num} samples; raise alpha, use '
            'balance=True, lower min_size or num_clients, or raise max_tries')
    owner = np.tile(np.arange(num_clients, dtype=np.int64), num_classes)
    assign = np.empty(num, dtype=np.int64)
    assign[order] = np.repeat(owner, table.ravel())
    return assign


@PARTITIONERS.register_module()
class Dirichlet(BasePartitioner):
    """Label-skewed split: each class is shared out by Dirichlet proportions.

    For every class ``c`` a vector ``p_c ~ Dir(alpha * 1_K)`` is drawn and the
    (shuffled) samples of ``c`` are cut into ``K`` consecutive runs of sizes
    ``floor(cumsum(p_c) * n_c)`` differences, so every sample is assigned and
    no sample is dropped. Small ``alpha`` (0.01-0.1) gives clients few
    dominant classes; large ``alpha`` (100+) approaches IID.

    ``balance=True`` adds self-balancing: classes are dealt in random order
    and a client that already holds ``N / K`` samples receives nothing from
    later classes (its share is renormalized over the other clients). Client
    sizes then stay close to ``N / K`` while label mixes remain skewed.

    If some client ends up with fewer than ``min_size`` samples the whole
    draw is repeated, up to ``max_tries`` times; after that a ValueError
    explains which parameters to change. ``min_size * num_clients > N`` is
    rejected at once. With very small ``alpha`` and few classes, almost every
    class lands on a single client, so ``min_size >= 1`` is only reachable
    with ``balance=True`` or ``num_classes >= num_clients``.

    Args:
        num_clients (int): Number of clients ``K``.
        alpha (float): Dirichlet concentration, > 0.
        min_size (int): Smallest acceptable client size, >= 0.
            Defaults to 1.
        balance (bool): Enable self-balancing. Defaults to False.
        max_tries (int): Maximum number of draws, >= 1. Defaults to 100.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self,
                 num_clients: int,
                 alpha: float,
                 min_size: int = 1,
                 balance: bool = False,
                 max_tries: int = 100,
                 seed: int = 0):
        super().__init__(num_clients, seed)
        self.alpha = check_positive_float(alpha, 'alpha')
        self.min_size = check_int(min_size, 'min_size', minimum=0)
        if not isinstance(balance, (bool, np.bool_)):
            raise ValueError(f'balance must be a bool, got {balance!r}')
        self.balance = bool(balance)
        self.max_tries = check_int(max_tries, 'max_tries', minimum=1)

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(
            num_clients=self.num_clients,
            alpha=self.alpha,
            min_size=self.min_size,
            balance=self.balance,
            max_tries=self.max_tries)

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
            max_tries=self.max_tries)
        clients, dropped = group_assignment(assign, self.num_clients)
        return self._make_partition(clients, keys, dropped)
