"""How the federated loop builds its parts and carries them through
checkpoints (the loop's helpers; the loop still owns every part)."""
from typing import Optional, Tuple

from decssl_mm.registry import (CLIENT_SAMPLERS, CLIENT_STATE_STORES,
                                CLIENT_TRAINERS, SERVERS)
from decssl_mm.utils.registry_utils import build_checked
from .checkpoint_refs import checkpoint_indices
from .local_schedule import SCHEDULE_UNITS, LocalEpochSchedule
from .messages import check_extras


def build_local_schedule(schedule_unit: str, local_epochs: Optional[int]
                         ) -> Optional[LocalEpochSchedule]:
    """Per-local-epoch stepping of the schedulers, where it is needed
    (``schedule_unit='local_epoch'`` with several local epochs).

    Raises:
        ValueError: Naming ``train_cfg.schedule_unit``.
    """
    if schedule_unit not in SCHEDULE_UNITS:
        raise ValueError(f'train_cfg.schedule_unit must be one of '
                         f'{SCHEDULE_UNITS}, got {schedule_unit!r}.')
    if schedule_unit == 'local_epoch' and local_epochs is not None and \
            int(local_epochs) > 1:
        return LocalEpochSchedule(local_epochs)
    return None


def build_parts(work_dir: str, seed: int, sampler: Optional[dict],
                participation: Optional[float],
                clients_per_round: Optional[int], trainer: Optional[dict],
                server: Optional[dict], aggregator: Optional[dict],
                client_state: Optional[dict],
                optimizer_policy: str) -> Tuple:
    """The client sampler, trainer, server and client-state store.

    The trainer and the server are checked to fit (their extras) before
    anything trains.

    Returns:
        tuple: ``(client_sampler, trainer, server, store)``.
    """
    sampler = dict(sampler or {})
    if participation is not None:
        sampler['participation'] = participation
    if clients_per_round is not None:
        sampler['clients_per_round'] = clients_per_round
    client_sampler = build_checked(CLIENT_SAMPLERS, sampler,
                                   'train_cfg.sampler',
                                   'UniformClientSampler', seed=seed)
    trainer = build_checked(CLIENT_TRAINERS, trainer, 'train_cfg.trainer',
                            'ClientTrainer',
                            optimizer_policy=optimizer_policy)
    server = build_checked(SERVERS, server, 'train_cfg.server',
                           'FedAvgServer', aggregator=aggregator)
    check_extras(trainer, server)
    store = build_checked(CLIENT_STATE_STORES, client_state,
                          'train_cfg.client_state', 'DiskClientStateStore')
    store.setup(work_dir)
    return client_sampler, trainer, server, store


def loop_state_dict(rounds_done: int, server, store, comm_total: int) -> dict:
    """The loop state of a checkpoint (plain tensors and numbers)."""
    store.commit(rounds_done)
    state = {
        'round': int(rounds_done),
        'client_states': store.state_dict(),
        'comm_bytes_total': int(comm_total),
    }
    state.update(server.state_dict())  # 'aggregator', 'extra'
    return state


def restore_loop_state(runner, state: dict, epoch: int, server,
                       store) -> int:
    """Restore a resumed run's server and client states.

    Returns:
        int: The communication total of the checkpoint.

    Raises:
        ValueError: If the checkpoint's round is not the resumed one.
    """
    if int(state['round']) != epoch:
        raise ValueError(
            f"Checkpoint loop state is for round {state['round']} but "
            f'the runner resumed at round {epoch}.')
    server.load_state_dict(state)
    store.load_state_dict(state['client_states'], epoch)
    for r, index in checkpoint_indices(runner, skip=epoch).items():
        store.adopt_checkpoint(r, index)
    return int(state.get('comm_bytes_total', 0))
