"""Which batches each client trains in a round, and which rank trains it."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import get_rank, get_world_size

from .batch_plan import client_round_plan, num_epoch_batches
from .rank_assignment import assign_clients_to_ranks


class RoundPlanner:
    """Plan a round's local work: a pure function of ``(seed, round)``.

    Args:
        dataset (ClientPartitionedDataset): The client-partitioned data.
        batch_sampler (ClientRoundBatchSampler): Batch size, ``drop_last``;
            the planner sets its ``round_length``.
        seed (int): Seed of data order and augmentation.
        local_epochs (int, optional): Local epochs per client per round.
        local_iters (int, optional): Local iterations (instead).
    """

    def __init__(self, dataset, batch_sampler, seed: int,
                 local_epochs: Optional[int],
                 local_iters: Optional[int]) -> None:
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        self.seed = int(seed)
        self.local_epochs = local_epochs
        self.local_iters = local_iters
        self.client_sizes = np.asarray(dataset.client_sizes, np.int64)

    def num_client_batches(self, n: int) -> int:
        """Local batches of a client of ``n`` samples in one round."""
        if self.local_iters is not None:
            return int(self.local_iters)
        return num_epoch_batches(n, self.batch_sampler.batch_size,
                                 self.batch_sampler.drop_last) * int(
                                     self.local_epochs)

    def expected_round_iters(self, clients_per_round: int) -> int:
        """Mean local iterations of one rank in one round."""
        mean = float(np.mean([self.num_client_batches(int(n))
                              for n in self.client_sizes]))
        return max(1, int(round(mean * clients_per_round /
                                get_world_size())))

    def client_batches(self, client_id: int,
                       round_idx: int) -> List[List[Tuple[int, int]]]:
        """The batches of ``(global index, augmentation seed)`` of a client.

        A pure function of ``(seed, round, client)``; see
        :func:`decssl_mm.federated.batch_plan.client_round_plan`.
        """
        return client_round_plan(
            self.dataset.client_indices(client_id), self.seed, round_idx,
            client_id, self.batch_sampler.batch_size,
            local_epochs=self.local_epochs, local_iters=self.local_iters,
            drop_last=self.batch_sampler.drop_last)

    def my_clients(self, participants: Sequence[int]) -> List[int]:
        """This rank's share of the participants (balanced by workload)."""
        workloads = [self.num_client_batches(int(self.client_sizes[k]))
                     for k in participants]
        mine = assign_clients_to_ranks(participants, workloads,
                                       get_world_size())[get_rank()]
        self.batch_sampler.round_length = sum(
            self.num_client_batches(int(self.client_sizes[k]))
            for k in mine)
        return mine
