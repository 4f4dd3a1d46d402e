"""The round's data stream, rebuilt when the DataLoader breaks.

One iterator over the round's DataLoader serves every client of the rank
in turn (see :class:`~decssl_mm.federated.round_data.ClientSlice`). When
reading a batch raises (a dataloader worker killed by a transform, a
``timeout``), that iterator cannot be trusted any more: torch shuts it
down, and every later ``next`` would end the round early. The stream then
drops it and, when the next batch is asked for, starts a new iterator (new
workers) at that batch, so a dead worker costs only the client whose batch
it was loading. Augmentation seeds travel with the sample indices, so the
rebuilt stream serves exactly the batches the old one would have.
"""
from typing import Any, List, Optional, Sequence

from torch.utils.data import DataLoader

__all__ = ['RoundStream']


class RoundStream:
    """An iterator over a round's planned batches that survives failures.

    Args:
        dataloader (DataLoader): The round's loader; its batch sampler has
            ``set_plan(batches)``.
        batches (Sequence): Every planned batch of the round, in order.
    """

    def __init__(self, dataloader: DataLoader, batches: Sequence) -> None:
        self.dataloader = dataloader
        self.batches: List = list(batches)
        #: Index of the next batch to serve.
        self.pos = 0
        self._it: Optional[Any] = None
        self._started = False
        #: Number of times the iterator was rebuilt (monitoring, tests).
        self.rebuilds = 0

    def _start(self) -> None:
        self.dataloader.batch_sampler.set_plan(self.batches[self.pos:])
        if self._started:  # after a failure: new workers, not a dead one
            if getattr(self.dataloader, '_iterator', None) is not None:
                self.dataloader._iterator = None
            self.rebuilds += 1
        self._started = True
        self._it = iter(self.dataloader)

    def __iter__(self) -> 'RoundStream':
        return self

    def __next__(self) -> Any:
        if self.pos >= len(self.batches):
            raise StopIteration
        if self._it is None:
            self._start()
        try:
            batch = next(self._it)
        except StopIteration:
            self._it = None
            raise
        except Exception:  # noqa: B902 - the iterator cannot be trusted
            self._it = None
            self.pos += 1
            raise
        self.pos += 1
        return batch

    def skip(self, n: int) -> None:
        """Skip ``n`` batches (a failed client's rest): without loading them
        when the iterator is broken, else by reading past them.

        Args:
            n (int): Number of batches.
        """
        left = int(n)
        while left > 0 and self.pos < len(self.batches):
            if self._it is None:
                self.pos = min(self.pos + left, len(self.batches))
                return
            left -= 1
            try:
                next(self)
            except StopIteration:
                return
            except Exception:  # noqa: B902 - a dropped client's batch
                continue
