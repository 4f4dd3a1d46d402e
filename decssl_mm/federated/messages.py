"""What the server and a client trainer say to each other in a round.

A round is a conversation in plain data: the server turns a sampled client
into a :class:`ClientTask`, the client trainer answers with a
:class:`ClientResult`, and the server folds the result into its aggregate.
Neither side sees the loop; tasks and results hold tensors, numbers and
strings only, so they could travel between processes as they are.

*Extras* are the named, algorithm-specific parts of a message (FeatARC's
alignment targets, SCAFFOLD's control variates). Each side declares the
extras it sends and needs; :func:`check_extras` refuses a trainer and a
server that do not fit before the first round.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, NamedTuple, Optional, Tuple

import numpy as np
import torch.nn as nn

from decssl_mm.utils.state_dict import StateDict


@dataclass
class ClientTask:
    """What a client is asked to do in a round.

    Args:
        client_id (int): The client.
        round_idx (int): The round (0-based).
        start_state (dict[str, Tensor]): The weights the client starts from
            (in process: a reference to the server's tensors, not a copy;
            never modified by the trainer).
        exchanged_keys (tuple[str]): Keys of ``start_state`` that are
            exchanged with the server; the other keys stay on the client.
        num_samples (int): The client's training samples.
        seed (int): The run's seed; the client derives its local RNG
            stream from ``(seed, round_idx, client_id)``.
        config (dict): Named scalar settings for the client.
        extras (dict): Algorithm-specific payloads by name.
    """

    client_id: int
    round_idx: int
    start_state: StateDict
    exchanged_keys: Tuple[str, ...]
    num_samples: int
    seed: int
    config: Dict[str, Any] = field(default_factory=dict)
    extras: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ClientResult:
    """What a client sends back after its local training.

    Args:
        client_id (int): The client.
        round_idx (int): The round.
        update (dict[str, Tensor]): The trained model (in process: the
            working model's tensors; read them before the next client).
        num_samples (int): The sample count the aggregate weights it by.
        metrics (dict): Scalars of the client's training.
        extras (dict): Algorithm-specific payloads by name.
        local_state (dict): What stays on the client until it is sampled
            again (tensors that are not exchanged, optimizer state, the
            trainer's own entries). The loop writes it to the client-state
            store; it never travels to the server.
    """

    client_id: int
    round_idx: int
    update: StateDict
    num_samples: int
    metrics: Dict[str, float] = field(default_factory=dict)
    extras: Dict[str, Any] = field(default_factory=dict)
    local_state: Dict[str, Any] = field(default_factory=dict)


class RunContext(NamedTuple):
    """What a server learns of the run when it is set up.

    Args:
        model (nn.Module): The working model (unwrapped); the server takes
            its initial weights and architecture.
        dataset: The client-partitioned training dataset.
        client_sizes (np.ndarray): Samples per client.
        clients_per_round (int): Participants per round.
        seed (int): The run's seed.
        work_dir (str): The run's work directory.
    """

    model: nn.Module
    dataset: Any
    client_sizes: np.ndarray
    clients_per_round: int
    seed: int
    work_dir: str

    @property
    def num_clients(self) -> int:
        """Number of clients of the partition."""
        return len(self.client_sizes)


def _names(values: Optional[Iterable[str]]) -> set:
    return set(values or ())


def check_extras(trainer, server) -> None:
    """Refuse a client trainer and a server whose extras do not fit.

    The server's ``sends_extras`` must all be understood by the trainer
    (``accepts_extras``), the trainer's ``needs_extras`` must all be sent,
    and the server's ``needs_extras`` must all be produced by the trainer
    (``produces_extras``); otherwise an algorithm would silently run
    without one of its parts.

    Args:
        trainer: The client trainer (``train_cfg.trainer``).
        server: The server (``train_cfg.server``).

    Raises:
        ValueError: Naming both types and the extras that do not fit.
    """
    t_name, s_name = type(trainer).__name__, type(server).__name__
    problems = []
    ignored = _names(server.sends_extras) - _names(trainer.accepts_extras)
    if ignored:
        problems.append(f'{s_name} sends {sorted(ignored)}, which {t_name} '
                        'does not use')
    unsent = _names(trainer.needs_extras) - _names(server.sends_extras)
    if unsent:
        problems.append(f'{t_name} needs {sorted(unsent)}, which {s_name} '
                        'does not send')
    missing = _names(server.needs_extras) - _names(trainer.produces_extras)
    if missing:
        problems.append(f'{s_name} needs {sorted(missing)} in results, '
                        f'which {t_name} does not produce')
    if problems:
        raise ValueError(
            f'train_cfg.trainer ({t_name}) and train_cfg.server ({s_name}) '
            'do not fit together: ' + '; '.join(problems) + '. Choose a '
            'trainer and a server of the same algorithm.')
