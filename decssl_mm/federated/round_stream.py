"""The round's data stream, rebuilt when the DataLoader breaks.

One iterator over the round's DataLoader serves every client of the rank
in turn (see :class:`~decssl_mm.federated.round_data.ClientSlice`), so its
workers prefetch the next client's first batches while the current client
trains its last ones. When reading a batch raises, that iterator cannot be
trusted any more: the stream drops it (and its workers) and decides whose
failure it was:

- a dead worker (a transform that segfaults, ``os._exit``, an OOM kill) may
  have been loading a prefetched batch of a *later* client (and a batch
  it had already sent may fail to arrive, ``ConnectionResetError``; the
  stream then waits briefly for the worker's death to show, since the
  connection closes before the process is reaped). The stream
  reads the same batch again through new workers that load only the
  current client's batches (a *fenced* iterator). If that read dies too,
  the current client fails; if not, the client goes on undisturbed and the
  culprit's own read fails later, in its turn;
- any other error (a transform's exception, a ``timeout``) belongs to the
  batch being read: its client fails.

After a failure the next read starts a new iterator (new workers) at the
next batch. Torch's ``SIGCHLD`` error is held until the stream reads
(:mod:`~decssl_mm.federated.worker_signals`), so a dying worker never fails
the client that happens to be training. Augmentation seeds travel with the
sample indices: a rebuilt stream serves exactly the batches the old one
would have, and a run without failures reads through one iterator as
before.
"""
import time
from typing import Any, List, Optional, Sequence

from torch.utils.data import DataLoader

from .worker_signals import WORKER_SIGNALS

__all__ = ['RoundStream']


def _worker_died(err: Exception) -> bool:
    """Whether a read failed because a worker process ended (torch's
    message), as opposed to an error of the batch being read. (A batch
    a dead worker had already sent can also fail to arrive, e.g.
    ``ConnectionResetError`` on its shared memory: the stream then sees
    the dead worker itself.)"""
    return 'DataLoader worker (pid' in str(err)


def _has_dead_worker(it: Any) -> bool:
    return any(not w.is_alive() for w in getattr(it, '_workers', None) or [])


#: Errors of the channel from a worker rather than of a batch: a batch a
#: worker sent just before it died cannot be received (its shared memory's
#: file descriptor goes with the process).
_TRANSPORT_ERRORS = (ConnectionError, EOFError)


def _dead_worker_soon(it: Any, err: Exception, grace_s: float) -> bool:
    """Whether a worker of ``it`` is dead, waiting up to ``grace_s`` for it
    after a transport error: the connection closes while the process is
    still exiting, so on a loaded machine ``is_alive()`` can lag the
    error. Any other error is judged at once."""
    if _has_dead_worker(it):
        return True
    if not isinstance(err, _TRANSPORT_ERRORS):
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if _has_dead_worker(it):
            return True
    return False


def _shutdown(it: Any) -> None:
    shutdown = getattr(it, '_shutdown_workers', None)
    if shutdown is not None:
        shutdown()


class RoundStream:
    """An iterator over a round's planned batches that survives failures.

    Args:
        dataloader (DataLoader): The round's loader; its batch sampler has
            ``set_plan(batches)``.
        batches (Sequence): Every planned batch of the round, in order.
        death_grace_s (float): After a transport error
            (``ConnectionError``, ``EOFError``), how long to wait for the
            dead worker to show before the error counts as the batch's own.
            Defaults to 10.
    """

    def __init__(self, dataloader: DataLoader, batches: Sequence,
                 death_grace_s: float = 10.0) -> None:
        self.dataloader = dataloader
        self.death_grace_s = float(death_grace_s)
        self.batches: List = list(batches)
        #: Index of the next batch to serve.
        self.pos = 0
        #: End of the current client's batches (see :meth:`begin_client`).
        self.fence = len(self.batches)
        self._it: Optional[Any] = None
        self._end = 0  # end of the current iterator's plan
        self._holding = False
        #: Number of iterators started after a failure (monitoring, tests).
        self.rebuilds = 0
        self._broken = False

    def begin_client(self, n: int) -> None:
        """The next ``n`` batches are one client's.

        Args:
            n (int): Number of batches of the client.
        """
        self.fence = min(self.pos + int(n), len(self.batches))

    def _start(self, end: int) -> None:
        if not self._holding:
            WORKER_SIGNALS.hold()
            self._holding = True
        self._end_stale_workers()
        self.dataloader.batch_sampler.set_plan(self.batches[self.pos:end])
        if self._broken:  # after a failure: new workers, not a dead one
            self.rebuilds += 1
            self._broken = False
        self._end = end
        self._it = iter(self.dataloader)
        WORKER_SIGNALS.install()  # torch's handler exists once workers do

    def _end_stale_workers(self) -> None:
        """Persistent workers of a failed or dead iterator are not reused
        (resetting one waits for a dead worker until the timeout)."""
        stale = getattr(self.dataloader, '_iterator', None)
        if stale is not None and (self._broken or _has_dead_worker(stale)):
            self.dataloader._iterator = None
            _shutdown(stale)

    def _drop(self) -> None:
        """Forget the iterator after a failure; its workers are ended."""
        it, self._it = self._it, None
        self._broken = True
        if getattr(self.dataloader, '_iterator', None) is it:
            self.dataloader._iterator = None  # persistent workers
        _shutdown(it)

    def _read(self) -> Any:
        with WORKER_SIGNALS.reading():
            return next(self._it)

    def __iter__(self) -> 'RoundStream':
        return self

    def __next__(self) -> Any:
        if self.pos >= len(self.batches):
            raise StopIteration
        try:
            if self._it is None or self._end <= self.pos:  # or fenced, used
                self._start(len(self.batches))
            batch = self._read()
        except StopIteration:
            self._it = None
            raise
        except Exception as err:  # noqa: B902 - cannot be trusted
            died = _worker_died(err) or \
                _dead_worker_soon(self._it, err, self.death_grace_s)
            self._drop()
            if not (died and self._end > self.fence):
                self.pos += 1
                raise
            batch = self._read_fenced()
        self.pos += 1
        return batch

    def _read_fenced(self) -> Any:
        """Read the current batch through workers that load only the
        current client's batches: a death now is the client's own."""
        self._start(self.fence)
        try:
            return self._read()
        except Exception:  # noqa: B902 - the client's own batch
            self._drop()
            self.pos += 1
            raise

    def skip(self, n: int) -> None:
        """Skip ``n`` batches (a failed client's rest): without loading them
        when the iterator is broken or a worker died, else by reading past
        them (the prefetched batches stay in use).

        Args:
            n (int): Number of batches.
        """
        target = min(self.pos + int(n), len(self.batches))
        if self._it is not None and WORKER_SIGNALS.pending:
            self._drop()
        while self.pos < target:
            if self._it is None:
                self.pos = target
                return
            try:
                with WORKER_SIGNALS.reading():
                    next(self._it)
            except StopIteration:
                self._it = None
                self.pos = target
                return
            except Exception:  # noqa: B902 - a dropped client's batch
                self._drop()
            self.pos += 1

    def pause(self) -> None:
        """End the current workers; the next read starts new ones where
        the stream stands (before a retry reads through its own)."""
        if self._it is not None:
            self._drop()

    def close(self) -> None:
        """End of the round: stop holding worker errors; an iterator that
        may have a dead worker is dropped, so the next round (persistent
        workers) starts new ones."""
        if self._it is not None and (WORKER_SIGNALS.pending or
                                     _has_dead_worker(self._it)):
            self._drop()
        self._end_stale_workers()
        if self._holding:
            WORKER_SIGNALS.release()
            self._holding = False
