"""A batch sampler that serves one round's clients, one after another."""
from typing import Iterator, List, Optional, Sequence, Tuple

from torch.utils.data import Sampler

from decssl_mm.registry import DATA_SAMPLERS

Batch = List[Tuple[int, int]]


@DATA_SAMPLERS.register_module()
class ClientRoundBatchSampler(Sampler):
    """Yield the batches that the federated loop planned for this round.

    The loop sets the plan (the batches of every client this rank trains in
    the round, client after client) before each round; the sampler then
    serves it. Batches never mix clients. Each element is a
    ``(global_index, seed)`` pair: the dataset seeds the augmentation of that
    sample with ``seed``, so a client's augmentations are the same whichever
    rank, worker or order trains it.

    Because a DataLoader iterates its batch sampler in the main process, one
    DataLoader (with persistent workers) serves every round and every client:
    there is no per-client start-up cost.

    Args:
        sampler (Sampler, optional): Ignored; accepted because mmengine's
            ``build_dataloader`` passes one.
        batch_size (int): Local batch size (the loop reads it).
        drop_last (bool): Drop each client's last incomplete batch. A
            trailing batch of one sample is always dropped when the client
            has other batches (BatchNorm cannot train on one sample).
    """

    def __init__(self,
                 sampler: Optional[Sampler] = None,
                 batch_size: int = 32,
                 drop_last: bool = False) -> None:
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError('`train_dataloader.batch_size` must be a '
                             f'positive integer, got {batch_size}.')
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last
        self._plan: List[Batch] = []
        #: Batches of this rank in the whole round (what ``len`` reports, so
        #: that log lines show ``[round][iter/iters of the round]``).
        self.round_length: Optional[int] = None

    def set_plan(self, batches: Sequence[Batch]) -> None:
        """Set the batches of the coming round (in training order)."""
        self._plan = list(batches)

    def __iter__(self) -> Iterator[Batch]:
        yield from self._plan

    def __len__(self) -> int:
        if self.round_length is not None:
            return self.round_length
        return len(self._plan)
