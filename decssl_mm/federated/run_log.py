"""What the federated loop tells the log at the start and after each round.
"""
import logging
import time
from typing import List

import numpy as np
from mmengine.dist import get_rank
from mmengine.logging import print_log


def log_run_start(loop) -> None:
    """Clients, rounds, what is exchanged, the server and the trainer."""
    sd = loop.global_state
    exchanged = set(loop.exchanged_keys)
    local = [k for k in sd if k not in exchanged]
    print_log(
        f'Federated: {loop.num_clients} clients, '
        f'{loop.clients_per_round} per round, {loop.max_epochs} rounds; '
        f'{len(exchanged)} tensors exchanged '
        f'({loop.exchanged_bytes / 2**20:.2f} MiB each way per client), '
        f'{len(local)} stay on clients'
        + (f' (e.g. {local[:4]})' if local else '')
        + f'; {loop.server.describe()}, trainer '
        f'{type(loop.trainer).__name__}',
        logger='current')
    empty = np.flatnonzero(loop.client_sizes == 0)
    if empty.size:
        print_log(f'Federated: clients {empty.tolist()[:20]} hold no '
                  'samples; they are skipped whenever sampled.',
                  logger='current', level=logging.WARNING)


def log_round_scalars(runner, round_idx: int, scalars: dict) -> None:
    """A round's scalars to the message hub (``train/<key>``) and, on rank
    0, to the visualizer at step ``round_idx + 1``."""
    hub = runner.message_hub
    hub.update_info('federated/round', round_idx)
    for key, val in scalars.items():
        hub.update_scalar(f'train/{key}', val)
    if get_rank() == 0:
        runner.visualizer.add_scalars(scalars, step=round_idx + 1)


class RoundTimer:
    """Round durations and the ETA line after each round."""

    def __init__(self) -> None:
        self.times: List[float] = []
        self.start = time.time()

    def begin(self) -> None:
        """Mark the start of a round."""
        self.start = time.time()

    def log(self, round_idx: int, rounds: int, num_participants: int,
            comm_total: int) -> None:
        """Log the finished round with an ETA from the last 5 rounds."""
        seconds = time.time() - self.start
        self.times.append(seconds)
        eta = float(np.mean(self.times[-5:])) * (rounds - round_idx - 1)
        print_log(
            f'Round [{round_idx + 1}/{rounds}] '
            f'{num_participants} clients, {seconds:.1f} s, '
            f'comm total {comm_total / 2**20:.1f} MiB, '
            f'ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}',
            logger='current')
