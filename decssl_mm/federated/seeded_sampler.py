"""Centralized training in the federated loop's sample order."""
from typing import Iterator, List, Optional, Tuple

import numpy as np
from mmengine.dist import get_rank, get_world_size
from torch.utils.data import Sampler

from decssl_mm.registry import DATA_SAMPLERS
from .batch_plan import client_round_plan, num_epoch_batches

Batch = List[Tuple[int, int]]


@DATA_SAMPLERS.register_module()
class ClientSeededBatchSampler(Sampler):
    """Batches of one client in the federated loop's order, for a plain loop.

    Lets mmengine's ``EpochBasedTrainLoop`` train on exactly the samples,
    order and augmentation seeds that ``FederatedTrainLoop`` gives client
    ``client_id`` in round ``epoch`` (see :func:`client_round_plan`). With a
    one-client partition (``partition=dict(type='IID', num_clients=1)``) and
    ``optimizer_policy='keep'`` in the federated run, the two runs are the
    same training, which is what makes the centralized baseline comparable.
    Batches are lists of ``(index, seed)`` pairs; the
    ``ClientPartitionedDataset`` seeds each sample's augmentation with its
    seed.

    Use it as ``train_dataloader.batch_sampler`` (mmengine passes the
    sampler and ``batch_size``). The epoch is that of the wrapped sampler,
    which mmengine's ``DistSamplerSeedHook`` advances (``DefaultSampler.
    set_epoch``), or the one given to :meth:`set_epoch`. Under N processes
    rank ``r`` takes batches ``r, r + N, ...`` (a data-parallel split; then
    the run is no longer step-for-step the one-client federated run).

    Args:
        sampler (Sampler): The dataloader's sampler (gives the dataset, the
            seed and the epoch).
        batch_size (int): Batch size.
        drop_last (bool): Drop incomplete last batches. Defaults to False.
        client_id (int): Whose samples to serve. Defaults to 0.
        local_epochs (int): Passes over the data per epoch. Defaults to 1.
        seed (int, optional): Seed of the order; defaults to the sampler's
            seed (mmengine gives it the runner's seed, which is also the
            federated loop's default).
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False,
                 client_id: int = 0,
                 local_epochs: int = 1,
                 seed: Optional[int] = None) -> None:
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError('train_dataloader.batch_size must be a positive '
                             f'integer, got {batch_size}.')
        if int(local_epochs) != local_epochs or local_epochs < 1:
            raise ValueError('train_dataloader.batch_sampler.local_epochs '
                             f'must be a positive integer, got '
                             f'{local_epochs}.')
        self.sampler = sampler
        self.dataset = getattr(sampler, 'dataset', None)
        if self.dataset is None:
            raise ValueError('ClientSeededBatchSampler needs a sampler with a '
                             '`dataset` (e.g. DefaultSampler).')
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        if seed is None:
            raise ValueError('train_dataloader.batch_sampler.seed is not set '
                             'and the sampler has no seed.')
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.client_id = int(client_id)
        self.local_epochs = int(local_epochs)
        self._epoch: Optional[int] = None
        if hasattr(self.dataset, 'client_indices'):
            self.indices = np.asarray(
                self.dataset.client_indices(self.client_id), np.int64)
        elif self.client_id == 0:
            self.indices = np.arange(len(self.dataset), dtype=np.int64)
        else:
            raise ValueError(
                'train_dataloader.batch_sampler.client_id > 0 needs a '
                'ClientPartitionedDataset.')

    @property
    def epoch(self) -> int:
        """The epoch (round) whose batches are served."""
        if self._epoch is not None:
            return self._epoch
        return int(getattr(self.sampler, 'epoch', 0))

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of ``epoch`` (also sets the sampler's)."""
        self._epoch = int(epoch)
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def _batches(self) -> List[Batch]:
        plan = client_round_plan(self.indices, self.seed, self.epoch,
                                 self.client_id, self.batch_size,
                                 local_epochs=self.local_epochs,
                                 drop_last=self.drop_last)
        world = get_world_size()
        return plan[get_rank()::world] if world > 1 else plan

    def __iter__(self) -> Iterator[Batch]:
        yield from self._batches()

    def __len__(self) -> int:
        total = num_epoch_batches(len(self.indices), self.batch_size,
                                  self.drop_last) * self.local_epochs
        world, rank = get_world_size(), get_rank()
        return len(range(rank, total, world)) if world > 1 else total
