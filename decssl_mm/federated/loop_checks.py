"""Checks the federated loop runs before its first round."""
from typing import Any, Optional

from .round_batch_sampler import ClientRoundBatchSampler


def check_loop_type(loop_type: Any) -> None:
    """Refuse ``train_cfg.type='FeatARCTrainLoop'``, showing the form that
    replaced it (the loop with FeatARC's server).

    Raises:
        ValueError: Naming ``train_cfg.type`` and the ``train_cfg.server``
            form.
    """
    if loop_type == 'FeatARCTrainLoop':
        raise ValueError(
            "train_cfg.type='FeatARCTrainLoop' is not a loop: FeatARC is the "
            'federated loop with the clustered server. Write train_cfg=dict('
            "type='FederatedTrainLoop', rounds=..., local_epochs=..., "
            "server=dict(type='ClusteredServer', num_clusters=2, "
            "eval_pipeline=[...], export_rule='most_samples', "
            "mode='ours')): the settings num_clusters, eval_pipeline, "
            'feat_batch_size, assign_max_samples and export_rule move into '
            'train_cfg.server.')


def validate_schedule(rounds: Any, local_epochs: Optional[int],
                      local_iters: Optional[int]) -> None:
    """``rounds`` and exactly one of ``local_epochs``/``local_iters``: the
    one place these rules are checked (the pre-flight config check and the
    loop both call it).

    Raises:
        ValueError: Naming the offending ``train_cfg`` key.
    """
    if rounds is None or int(rounds) != rounds or rounds < 1:
        raise ValueError(
            f'train_cfg.rounds must be a positive integer, got {rounds}.')
    if (local_epochs is None) == (local_iters is None):
        raise ValueError('Give exactly one of train_cfg.local_epochs and '
                         'train_cfg.local_iters, got local_epochs='
                         f'{local_epochs}, local_iters={local_iters}.')
    for name, v in (('local_epochs', local_epochs), ('local_iters',
                                                      local_iters)):
        if v is not None and (int(v) != v or v < 1):
            raise ValueError(f'train_cfg.{name} must be a positive '
                             f'integer, got {v}.')


def check_round_data(dataset: Any, batch_sampler: Any) -> None:
    """Client-partitioned data served by the round batch sampler.

    Raises:
        TypeError: Naming the ``train_dataloader`` key.
    """
    if not hasattr(dataset, 'client_indices'):
        raise TypeError(
            'train_dataloader.dataset must be a ClientPartitionedDataset '
            '(dict(type="ClientPartitionedDataset", dataset=..., '
            f'partition=...)), got {type(dataset).__name__}.')
    if not isinstance(batch_sampler, ClientRoundBatchSampler):
        raise TypeError('train_dataloader.batch_sampler must be a '
                        'ClientRoundBatchSampler, got '
                        f'{type(batch_sampler).__name__}.')


def check_epoch_schedulers(scheds: Any) -> None:
    """Every parameter scheduler must be epoch (round) based.

    Raises:
        ValueError: Naming the iteration-based scheduler.
    """
    scheds = scheds or []
    if isinstance(scheds, dict):
        scheds = [s for v in scheds.values() for s in v]
    for s in scheds:
        if not getattr(s, 'by_epoch', True):
            raise ValueError(
                f'param_scheduler {type(s).__name__} is iteration based; '
                'the federated loop needs by_epoch=True schedulers (the '
                'learning rate of a round follows the round index).')
