"""The loop's handling of one client: task, hooks, retries, client state."""
import logging
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from .messages import ClientResult
from .round_data import ClientSlice, client_loader
from .round_stream import RoundStream


class StateNotSaved(Exception):
    """A client's update is in the aggregate; its local state was not saved.

    Retrying would add the update twice: the client counts as trained and
    keeps its previous state version.

    Args:
        cause (Exception): The error of the write.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(f'{type(cause).__name__}: {cause}')


class ClientRunner:
    """Run the round's clients of one rank: the exchange between server and
    trainer, and everything around it that belongs to the loop.

    For a client ``k`` of round ``r``: the hook ``before_client``; its
    local state from the store; ``task = server.configure(k, r, n_k)``;
    ``result = trainer.fit(task, batches, local)``; ``memo =
    server.add(result)``; the result's local state (with the server's memo)
    to the store; the hook ``after_client``. A client that fails before its
    update is aggregated is retried ``retries`` times on the same batches
    (a retry reads them through a new loader with new workers, see
    :func:`client_loader`); a failed state write after aggregation is not
    retried (:class:`StateNotSaved`). A failure to load a batch (a dead
    worker included) fails the client whose batch it is
    (:class:`RoundStream`).

    Args:
        loop (FederatedTrainLoop): The loop that owns the parts.
        retries (int): Times a failing client is retried in the round.
    """

    def __init__(self, loop, retries: int = 0) -> None:
        if int(retries) != retries or retries < 0:
            raise ValueError('train_cfg.client_retries must be >= 0.')
        self.loop = loop
        self.retries = int(retries)
        #: ``client -> last error`` of this rank's failed clients this round
        self.round_errors: Dict[int, str] = {}

    def memos(self, mine: Iterable[int]) -> Optional[Dict[int, object]]:
        """The server's entries (``server.memo_key``) in the client states
        of this rank's participants; None for a server that keeps none."""
        key = self.loop.server.memo_key
        if key is None:
            return None
        return {int(k): (self.loop.store.load(k) or {}).get(key)
                for k in mine}

    def run_round(self, round_idx: int, mine: Sequence[int]
                  ) -> Tuple[List[int], List[int], Dict[int, int]]:
        """Train this rank's clients of the round, in order; one stream over
        the loop's DataLoader serves them all.

        Returns:
            tuple: ``(trained, failed, {client: round of its new state})``.
        """
        loop = self.loop
        # a client without samples is skipped (documented)
        plans = [(k, loop.planner.client_batches(k, round_idx)) for k in mine
                 if loop.client_sizes[k] > 0]
        loop.batch_sampler.set_plan([b for _, bs in plans for b in bs])
        stream = RoundStream(loop.dataloader, [b for _, bs in plans
                                               for b in bs]) if plans else None
        runner = loop.runner
        self.round_errors = {}
        ok, failed, written = [], [], {}
        try:
            for k, batches in plans:
                runner.call_hook('before_client', client_id=int(k),
                                 round_idx=round_idx)
                done, saved = self.run_client(k, batches, round_idx, stream)
                (ok if done else failed).append(k)
                if saved:
                    written[k] = round_idx
                runner.call_hook('after_client', client_id=int(k),
                                 round_idx=round_idx, trained=done)
        finally:
            if stream is not None:
                stream.close()
        self.settle_state_writes(round_idx, written)
        return ok, failed, written

    def run_client(self, client_id: int, batches: list, round_idx: int,
                   stream: Optional[Iterable]) -> Tuple[bool, bool]:
        """Train a client, retrying on failure.

        Returns:
            tuple: ``(trained, state_saved)``.
        """
        for attempt in range(self.retries + 1):
            own = None if attempt == 0 else self._retry_stream(stream,
                                                               batches)
            data = ClientSlice(stream if own is None else own, len(batches))
            try:
                return True, self.exchange(client_id, round_idx, data)
            except StateNotSaved as e:
                self._warn_not_saved(round_idx, client_id, e)
                return True, False
            except Exception as e:  # noqa: B902 - one client must not
                # stop the run (nor, under torch.distributed, hang the
                # other ranks); if every client fails the round stops it.
                data.drain()
                self.round_errors[int(client_id)] = \
                    f'{type(e).__name__}: {e}'
                what = 'retrying' if attempt < self.retries else \
                    'dropping it from the round'
                print_log(
                    f'Round {round_idx}: client {client_id} failed '
                    f'(attempt {attempt + 1}/{self.retries + 1}: '
                    f'{type(e).__name__}: {e}); {what}.',
                    logger='current', level=logging.WARNING)
            finally:
                if own is not None:
                    own.close()
        return False, False

    def _retry_stream(self, stream: Optional[RoundStream],
                      batches: list) -> RoundStream:
        """A retry's own stream: a new loader, new workers. The round's
        workers are ended first, so that one of them dying on a later
        client's batch cannot fail the retry."""
        if stream is not None:
            stream.pause()
        return RoundStream(client_loader(self.loop.dataloader, batches),
                           batches)

    def exchange(self, client_id: int, round_idx: int,
                 data: Iterable) -> bool:
        """One attempt: task, local training, aggregation, client state.

        Returns:
            bool: Whether a state was written (none for a client whose
            local state holds nothing, see ``store.needs_save``).
        """
        loop = self.loop
        store = loop.store
        local = store.load(client_id)
        task = loop.server.configure(client_id, round_idx,
                                     int(loop.client_sizes[client_id]))
        self.begin_client(client_id)
        loop.runner.message_hub.update_info('client_id', int(client_id))
        result: ClientResult = loop.trainer.fit(task, data, local)
        memo = loop.server.add(result)
        try:
            state = dict(result.local_state)
            state.update(memo)
            if not store.needs_save(client_id, state):
                return False
            store.save(client_id, state, round_idx)
        except Exception as e:  # noqa: B902 - the update is aggregated
            raise StateNotSaved(e) from e
        return True

    def begin_client(self, client_id: int) -> None:
        """A client's local training starts (or restarts): with
        ``schedule_unit='local_epoch'``, the round-start hyper-parameters.
        """
        loop = self.loop
        if loop.local_schedule is not None:
            loop.local_schedule.begin_client(
                loop.planner.num_client_batches(
                    int(loop.client_sizes[client_id])))

    def settle_state_writes(self, round_idx: int,
                            written: Dict[int, int]) -> None:
        """Wait for client-state writes still in flight (a store with
        ``write_behind``); a client whose write failed is removed from
        ``written`` and keeps its previous state (its update is in the
        aggregate).
        """
        flush: Optional[Callable] = getattr(self.loop.store, 'flush', None)
        for k, err in (flush() if flush is not None else {}).items():
            written.pop(k, None)
            self._warn_not_saved(round_idx, k, err)

    @staticmethod
    def _warn_not_saved(round_idx: int, client_id: int, err) -> None:
        print_log(
            f'Round {round_idx}: client {client_id}: its update is '
            f'aggregated, but its local state could not be saved ({err}); '
            'it keeps its previous state.', logger='current',
            level=logging.WARNING)
