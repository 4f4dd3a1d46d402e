"""A round's data: one stream over the DataLoader, read client by client."""
import copy
from typing import Iterator, List, Tuple

from torch.utils.data import DataLoader

from .round_batch_sampler import ClientRoundBatchSampler

Batch = List[Tuple[int, int]]
#: Seconds the round's DataLoader waits for a batch from its workers
#: (``train_dataloader.timeout`` overrides). A dead worker is noticed at
#: once (torch's ``SIGCHLD`` handler); the timeout bounds a stuck one,
#: which then fails the client whose batch it holds.
ROUND_LOADER_TIMEOUT = 300


class ClientSlice:
    """The next ``n`` batches of a round's data stream: one client's share.

    The round's batches of every client of this rank come from ONE iterator
    over the DataLoader, so its workers prefetch the next client's first
    batches while the current client trains its last ones (no pipeline
    bubble at client boundaries).

    Args:
        stream (Iterator): The round's iterator over the DataLoader.
        n (int): Number of batches of the client.
    """

    def __init__(self, stream: Iterator, n: int) -> None:
        self.stream = stream
        self.left = int(n)
        if hasattr(stream, 'begin_client'):  # a RoundStream: whose batches
            stream.begin_client(self.left)

    def __iter__(self):
        while self.left > 0:
            self.left -= 1  # a batch that fails to load is consumed too
            try:
                batch = next(self.stream)
            except StopIteration:
                raise RuntimeError('the round\'s data stream ended before '
                                   'the client\'s last batch') from None
            yield batch

    def drain(self) -> None:
        """Skip the client's remaining batches (after it failed)."""
        if hasattr(self.stream, 'skip'):  # a RoundStream: no dead reads
            self.stream.skip(self.left)
            self.left = 0
            return
        while self.left > 0:
            self.left -= 1
            try:
                next(self.stream)
            except StopIteration:
                return
            except Exception:  # noqa: B902 - a bad batch of a dropped client
                continue


def client_loader(dataloader: DataLoader, batches: List[Batch]) -> DataLoader:
    """A fresh loader of one client's batches (for retries).

    The augmentation seeds travel with the indices, so the batches equal
    those the round's stream served. It has the round loader's workers
    (new ones, not persistent) and ``timeout``: a transform that kills its
    process kills a worker, not the run. Its batch sampler is a
    :class:`ClientRoundBatchSampler` holding ``batches`` (a
    :class:`~decssl_mm.federated.round_stream.RoundStream` can drive it).

    Args:
        dataloader (DataLoader): The round's loader (dataset, collate).
        batches (list): The client's planned batches.
    """
    sampler = ClientRoundBatchSampler(
        batch_size=max([len(b) for b in batches] or [1]))
    sampler.set_plan(batches)
    return DataLoader(dataloader.dataset, batch_sampler=sampler,
                      num_workers=dataloader.num_workers,
                      collate_fn=dataloader.collate_fn,
                      pin_memory=dataloader.pin_memory,
                      timeout=dataloader.timeout,
                      worker_init_fn=dataloader.worker_init_fn)


def with_round_batch_sampler(cfg: dict) -> dict:
    """``train_dataloader`` with the round batch sampler the loop drives.

    Args:
        cfg (dict): The ``train_dataloader`` config.

    Returns:
        dict: A copy whose batch sampler is ``ClientRoundBatchSampler``.

    Raises:
        ValueError: If the config names another batch sampler.
    """
    cfg = copy.deepcopy(cfg)
    bs = cfg.get('batch_sampler') or {}
    if bs.get('type', 'ClientRoundBatchSampler') not in (
            'ClientRoundBatchSampler', 'decssl_mm.ClientRoundBatchSampler'):
        raise ValueError('train_dataloader.batch_sampler is set by the '
                         'federated loop; remove '
                         f"{bs.get('type')!r} from the config.")
    bs['type'] = 'ClientRoundBatchSampler'
    if 'drop_last' in cfg:
        bs.setdefault('drop_last', cfg.pop('drop_last'))
    cfg['batch_sampler'] = bs
    cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    if cfg.get('num_workers', 0) > 0:  # no unbounded wait for a worker
        cfg.setdefault('timeout', ROUND_LOADER_TIMEOUT)
    cfg.setdefault('collate_fn', dict(type='default_collate'))
    return cfg
