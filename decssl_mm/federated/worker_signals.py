"""Hold a dead dataloader worker's error until the round's stream reads.

Torch installs a ``SIGCHLD`` handler that raises ``RuntimeError:
DataLoader worker (pid ...) exited unexpectedly`` in the main thread the
moment a worker dies, wherever that thread is: in a training step, in
``server.add``, in a hook. Workers prefetch batches of the next client, so
that error would fail whichever client happens to run, and could stop the
run from code outside the client's ``try``. While a round's stream holds
:data:`WORKER_SIGNALS`, the error is kept and raised at the stream's next
read (:meth:`WorkerSignals.reading`), where the stream can tell whose
batch it was. Torch's handler itself runs during reads, so a wait for a
batch still ends the moment a worker dies.
"""
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from torch.utils.data._utils import signal_handling

__all__ = ['WorkerSignals', 'WORKER_SIGNALS']


class WorkerSignals:
    """Defer torch's dataloader ``SIGCHLD`` handler outside reads.

    Installed over torch's handler while at least one stream holds it
    (:meth:`hold` / :meth:`release`); only in the main thread and only
    once torch's handler exists (it is set up by the first multi-process
    iterator). Otherwise nothing changes.
    """

    def __init__(self) -> None:
        self._prev: Optional[Callable] = None
        self._holders = 0
        self._reading = False
        #: A child process ended while no stream was reading.
        self.pending = False

    @staticmethod
    def _can_install() -> bool:
        return hasattr(signal, 'SIGCHLD') and \
            threading.current_thread() is threading.main_thread()

    def hold(self) -> None:
        """Start deferring (call once per stream, then :meth:`release`)."""
        self._holders += 1
        self.install()

    def install(self) -> None:
        """Wrap torch's handler if a holder exists and it is not wrapped
        yet (torch sets its handler up with the first worker iterator)."""
        if not self._holders or self._prev is not None or \
                not self._can_install() or \
                not getattr(signal_handling, '_SIGCHLD_handler_set', False):
            return
        current = signal.getsignal(signal.SIGCHLD)
        if callable(current):  # torch's handler (it chains to the previous)
            self._prev = current
            signal.signal(signal.SIGCHLD, self._handle)

    def release(self) -> None:
        """Stop deferring when the last holder releases; a held error is
        dropped (its iterator is gone with its stream)."""
        self._holders = max(self._holders - 1, 0)
        if self._holders or self._prev is None:
            return
        if self._can_install() and \
                signal.getsignal(signal.SIGCHLD) == self._handle:
            signal.signal(signal.SIGCHLD, self._prev)
        self._prev = None
        self.pending = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self._reading:
            self._prev(signum, frame)
        else:
            self.pending = True

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A read from a DataLoader iterator: a held error is raised now,
        and a worker that dies during the read raises at once."""
        self._reading = True
        try:
            if self.pending and self._prev is not None:
                self.pending = False
                self._prev(signal.SIGCHLD, None)
            yield
        finally:
            self._reading = False


#: The process's one deferral (signal handlers are per process).
WORKER_SIGNALS = WorkerSignals()
