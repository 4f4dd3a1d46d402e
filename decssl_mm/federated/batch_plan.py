"""How a client's local work in a round is cut into batches.

One place for the rule, used by the federated loop and by the centralized
sampler that reproduces it (``ClientSeededBatchSampler``).
"""
from typing import List, Optional, Tuple

import numpy as np

Batch = List[Tuple[int, int]]


def epoch_batches(perm: np.ndarray, bs: int,
                  drop_last: bool) -> List[np.ndarray]:
    """Split one local epoch's permutation into batches.

    With ``drop_last`` every batch is full (algorithms such as MoCo need
    ``queue_len % batch_size == 0``): the remainder is dropped, and a client
    smaller than one batch repeats its samples to fill one. Otherwise the
    last batch may be smaller, except that a last batch of a single sample
    is dropped (BatchNorm cannot train on one sample), and a client holding
    a single sample trains on it twice.

    Args:
        perm (np.ndarray): The epoch's order of the client's indices.
        bs (int): Batch size.
        drop_last (bool): Full batches only.

    Returns:
        list[np.ndarray]: The batches of indices.
    """
    n = len(perm)
    if drop_last:
        if n < bs:
            return [np.resize(perm, bs)]
        return [perm[i:i + bs] for i in range(0, n - bs + 1, bs)]
    if n == 1:
        return [np.resize(perm, 2)]
    ep = [perm[i:i + bs] for i in range(0, n, bs)]
    if len(ep) > 1 and len(ep[-1]) == 1:
        ep = ep[:-1]
    return ep


def num_epoch_batches(n: int, bs: int, drop_last: bool) -> int:
    """Number of batches :func:`epoch_batches` makes for ``n`` samples."""
    if n == 0:
        return 0
    if drop_last:
        return max(n // bs, 1)
    per_epoch = -(-n // bs)
    return per_epoch - 1 if per_epoch > 1 and n % bs == 1 else per_epoch


def client_round_plan(indices: np.ndarray,
                      seed: int,
                      round_idx: int,
                      client_id: int,
                      batch_size: int,
                      local_epochs: Optional[int] = 1,
                      local_iters: Optional[int] = None,
                      drop_last: bool = False) -> List[Batch]:
    """The batches of ``(index, augmentation seed)`` a client trains in a round.

    A pure function of ``(seed, round, client)``: the order and every
    sample's augmentation seed are drawn from
    ``np.random.default_rng([seed, round, client])``. With ``local_epochs``
    each epoch is a permutation cut by :func:`epoch_batches`; with
    ``local_iters`` the concatenated permutations are cut into that many
    full batches.

    Args:
        indices (np.ndarray): The client's global sample indices.
        seed (int): The run's seed.
        round_idx (int): The round.
        client_id (int): The client.
        batch_size (int): Batch size.
        local_epochs (int, optional): Passes over the data per round.
        local_iters (int, optional): Iterations per round (instead).
        drop_last (bool): Full batches only. Defaults to False.

    Returns:
        list[list[tuple[int, int]]]: The batches.
    """
    idx = np.asarray(indices, np.int64)
    n = len(idx)
    if n == 0:
        return []
    rng = np.random.default_rng([int(seed), int(round_idx), int(client_id)])
    chunks: List[np.ndarray] = []
    if local_iters is not None:
        need = int(local_iters) * batch_size
        order = np.concatenate(
            [rng.permutation(idx) for _ in range(-(-need // n))])[:need]
        chunks = np.split(order, int(local_iters))
    else:
        for _ in range(int(local_epochs)):
            chunks.extend(
                epoch_batches(rng.permutation(idx), batch_size, drop_last))
    seeds = rng.integers(0, 2**31 - 1, size=sum(len(c) for c in chunks))
    out, pos = [], 0
    for c in chunks:
        out.append(list(zip(c.tolist(), seeds[pos:pos + len(c)].tolist())))
        pos += len(c)
    return out
