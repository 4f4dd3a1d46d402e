"""A dataloader worker killed by a transform costs its client only."""
import os
import signal
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from decssl_mm.federated.round_data import (ClientSlice, client_loader,
                                            with_round_batch_sampler)
from decssl_mm.federated.round_stream import RoundStream

#: The sample whose transform kills its worker process.
FATAL = 5
#: The sample whose transform never returns (a stuck worker).
STUCK = 20


class _Killing(Dataset):
    """Sample ``FATAL`` ends the process loading it (only in a worker, so
    the test process itself never dies)."""

    def __len__(self):
        return 24

    def __getitem__(self, idx):
        if idx == FATAL and get_worker_info() is not None:
            os._exit(3)
        if idx == STUCK and get_worker_info() is not None:
            time.sleep(3600)
        return torch.tensor([idx])


class _PlanSampler:
    """The part of ClientRoundBatchSampler the stream uses."""

    def __init__(self):
        self._plan = []

    def set_plan(self, batches):
        self._plan = list(batches)

    def __iter__(self):
        return iter(self._plan)

    def __len__(self):
        return len(self._plan)


def _loader(persistent, timeout=60):
    return DataLoader(_Killing(), batch_sampler=_PlanSampler(), num_workers=2,
                      persistent_workers=persistent, timeout=timeout)


def _values(batch):
    return batch.reshape(-1).tolist()


@pytest.mark.parametrize('persistent', [False, True])
def test_dead_worker_costs_its_client_only(persistent):
    client0 = [[0, 1], [4, 5], [6, 7]]  # sample 5 kills its worker
    client1 = [[8, 9], [10, 11], [12, 13]]
    client2 = [[14, 15]]
    loader = _loader(persistent)
    plan = client0 + client1 + client2
    loader.batch_sampler.set_plan(plan)
    stream = RoundStream(loader, plan)
    first = ClientSlice(stream, len(client0))
    seen = []
    with pytest.raises(RuntimeError, match='DataLoader worker'):
        for batch in first:
            seen.append(_values(batch))
    first.drain()
    assert seen == [[0, 1]]
    for client in (client1, client2):
        got = [_values(b) for b in ClientSlice(stream, len(client))]
        assert got == client
    # new workers to check whose batch it was, new workers after it
    assert stream.rebuilds == 2
    # the next round starts a healthy stream again
    loader.batch_sampler.set_plan(client1)
    again = RoundStream(loader, client1)
    assert [_values(b) for b in ClientSlice(again, 3)] == client1


@pytest.mark.parametrize('persistent', [False, True])
def test_prefetched_batch_of_next_client_fails_that_client(persistent):
    """Sample 5 is in the next client's first batch: the workers load it
    while the first client trains. The first client trains undisturbed
    (the death is held, not raised in its step); the next one fails."""
    client0 = [[0, 1], [2, 3]]
    client1 = [[4, 5], [6, 7]]
    client2 = [[8, 9]]
    loader = _loader(persistent)
    plan = client0 + client1 + client2
    stream = RoundStream(loader, plan)
    first = ClientSlice(stream, len(client0))
    got = []
    for batch in first:
        got.append(_values(batch))
        time.sleep(1.0)  # "training": a worker dies meanwhile
    assert got == client0
    second = ClientSlice(stream, len(client1))
    with pytest.raises(RuntimeError, match='DataLoader worker'):
        list(second)
    second.drain()
    assert [_values(b) for b in ClientSlice(stream, 1)] == client2
    stream.close()


def test_stuck_worker_times_out_and_fails_its_client_only():
    """The loader's timeout bounds the wait; the batch being read is the
    client's, so no second wait is spent on it."""
    client0 = [[18, 19], [20, 21]]
    client1 = [[22, 23]]
    stream = RoundStream(_loader(False, timeout=2), client0 + client1)
    first = ClientSlice(stream, len(client0))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match='timed out'):
        list(first)
    first.drain()
    assert [_values(b) for b in ClientSlice(stream, 1)] == client1
    assert time.monotonic() - start < 30
    stream.close()


def test_worker_dead_at_round_end_is_not_reused():
    """A persistent worker that dies after the round's last read (held,
    not raised) is not reset for the next round (that would wait for it
    until the timeout)."""
    loader = _loader(True, timeout=60)
    stream = RoundStream(loader, [[0, 1]])
    assert [_values(b) for b in ClientSlice(stream, 1)] == [[0, 1]]
    os.kill(loader._iterator._workers[0].pid, signal.SIGKILL)
    time.sleep(0.5)  # held: nothing is raised here
    stream.close()
    start = time.monotonic()
    again = RoundStream(loader, [[2, 3], [6, 7]])
    assert [_values(b) for b in ClientSlice(again, 2)] == [[2, 3], [6, 7]]
    again.close()
    assert time.monotonic() - start < 30


def test_stream_that_ends_early_names_it():
    with pytest.raises(RuntimeError, match='ended before'):
        list(ClientSlice(iter([]), 1))


def test_retry_loader_keeps_workers_and_timeout():
    """A retry reads through new workers: the crash kills a worker again,
    not this process."""
    loader = _loader(False)
    retry = client_loader(loader, [[4, 5]])
    assert retry.num_workers == 2 and retry.timeout == 60
    with pytest.raises(RuntimeError, match='DataLoader worker'):
        list(retry)
    assert [_values(b) for b in client_loader(loader, [[8, 9]])] == [[8, 9]]


def test_round_loader_gets_a_timeout():
    cfg = with_round_batch_sampler(dict(num_workers=2, batch_size=4))
    assert cfg['timeout'] > 0
    assert 'timeout' not in with_round_batch_sampler(
        dict(num_workers=0, batch_size=4))
    assert with_round_batch_sampler(
        dict(num_workers=2, timeout=7))['timeout'] == 7


class _Exiting:
    """A worker process seen alive until ``lag`` seconds from now."""

    def __init__(self, lag):
        self.dies_at = time.monotonic() + lag

    def is_alive(self):
        return time.monotonic() < self.dies_at


class _ResetThenHealthy:
    """A loader whose first iterator fails its first read with
    ``ConnectionResetError`` while its worker still looks alive (a batch
    sent just before the worker died, read on a loaded machine); every
    later iterator serves its plan."""

    def __init__(self, lag):
        self.batch_sampler = _PlanSampler()
        self.lag = lag
        self.iterators = 0

    def __iter__(self):
        self.iterators += 1
        plan = [torch.tensor(b) for b in self.batch_sampler]
        if self.iterators > 1:
            return iter(plan)
        workers = [_Exiting(self.lag)]

        class _Broken:
            _workers = workers

            def __next__(self):
                raise ConnectionResetError(104, 'Connection reset by peer')

        return _Broken()


@pytest.mark.parametrize('lag,grace,first_fails', [
    (0.3, 10.0, False),  # the death shows within the grace: fenced re-read
    (30.0, 0.2, True),   # no death seen: the error is the batch's own
])
def test_connection_reset_waits_for_the_dead_worker(lag, grace, first_fails):
    client0 = [[0, 1], [2, 3]]
    client1 = [[4, 5]]
    loader = _ResetThenHealthy(lag)
    stream = RoundStream(loader, client0 + client1, death_grace_s=grace)
    first = ClientSlice(stream, len(client0))
    if first_fails:
        with pytest.raises(ConnectionResetError):
            list(first)
        first.drain()
    else:
        assert [_values(b) for b in first] == client0
    assert [_values(b) for b in ClientSlice(stream, 1)] == client1
    stream.close()
