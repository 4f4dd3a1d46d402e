"""Which clients take part in a round."""
from typing import Optional

import numpy as np

from decssl_mm.registry import CLIENT_SAMPLERS


@CLIENT_SAMPLERS.register_module()
class UniformClientSampler:
    """Sample the participants of each round uniformly without replacement.

    The draw of round ``r`` depends only on ``(seed, r)``: it is a pure
    function of the round index, so a resumed run, a run on another number of
    ranks and an uninterrupted run all pick the same clients, and there is no
    random state to checkpoint.

    Exactly one of ``participation`` and ``clients_per_round`` is given
    (when both are None every client takes part in every round).

    Args:
        participation (float, optional): Fraction of clients per round, in
            (0, 1]. ``round(participation * num_clients)`` clients (at least
            one) are drawn. Defaults to None.
        clients_per_round (int, optional): Number of clients per round.
            Defaults to None.
        weighted (bool): Draw clients with probability proportional to their
            number of samples (still without replacement). Defaults to False.
        seed (int): Seed of the per-round draws. Defaults to 0.
    """

    def __init__(self,
                 participation: Optional[float] = None,
                 clients_per_round: Optional[int] = None,
                 weighted: bool = False,
                 seed: int = 0) -> None:
        if participation is not None and clients_per_round is not None:
            raise ValueError('Give only one of `participation` and '
                             '`clients_per_round`, not both.')
        if participation is not None and not 0 < participation <= 1:
            raise ValueError('`participation` must be in (0, 1], got '
                             f'{participation}.')
        if clients_per_round is not None and (
                int(clients_per_round) != clients_per_round
                or clients_per_round < 1):
            raise ValueError('`clients_per_round` must be a positive integer, '
                             f'got {clients_per_round}.')
        self.participation = participation
        self.clients_per_round = clients_per_round
        self.weighted = weighted
        self.seed = int(seed)

    def num_sampled(self, num_clients: int) -> int:
        """Number of clients drawn in each round.

        Args:
            num_clients (int): Number of clients in the federation.

        Returns:
            int: Participants per round.
        """
        if self.clients_per_round is not None:
            if self.clients_per_round > num_clients:
                raise ValueError(
                    f'`clients_per_round` ({self.clients_per_round}) is '
                    f'larger than the number of clients ({num_clients}).')
            return int(self.clients_per_round)
        if self.participation is not None:
            return max(1, int(round(self.participation * num_clients)))
        return num_clients

    def sample(self, round_idx: int, client_sizes: np.ndarray) -> np.ndarray:
        """Draw the participants of one round.

        Args:
            round_idx (int): Zero-based round index.
            client_sizes (np.ndarray): Number of samples of every client.

        Returns:
            np.ndarray: Sorted int64 ids of the participants.
        """
        num_clients = len(client_sizes)
        m = self.num_sampled(num_clients)
        if m == num_clients:
            return np.arange(num_clients, dtype=np.int64)
        rng = np.random.default_rng([self.seed, int(round_idx)])
        p = None
        if self.weighted:
            sizes = np.asarray(client_sizes, dtype=np.float64)
            p = sizes / sizes.sum()
        ids = rng.choice(num_clients, size=m, replace=False, p=p)
        return np.sort(ids).astype(np.int64)
