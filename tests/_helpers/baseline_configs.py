"""Tiny versions of the baseline and FeatARC configs (few-second CPU runs).

Like :func:`_helpers.configs.tiny_federated_cfg`, but also for models that
wrap an algorithm (``FeatARC``), classifiers (Dec-SL, linear probes) and
plain ``EpochBasedTrainLoop`` configs.
"""
import os.path as osp
import uuid
from typing import Optional

from mmengine.config import Config, ConfigDict

from .configs import ROOT, finish_tiny_cfg

BASE_CHANNELS = 8


def _shrink_model(model: ConfigDict) -> None:
    """ResNet with 8 base channels; necks/heads follow the feature size."""
    if model.get('type') == 'FeatARC':
        model = model.algorithm
    model.backbone.base_channels = BASE_CHANNELS
    model.backbone.stem_channels = BASE_CHANNELS
    feat = BASE_CHANNELS * (8 if model.backbone.depth in (18, 34) else 32)
    neck = model.get('neck')
    if neck is not None and 'in_channels' in neck:
        neck.in_channels = feat
    head = model.get('head')
    if head is not None and head.get('type') == 'LinearClsHead':
        head.in_channels = feat


def _point_data(loader: ConfigDict, data_root: str, batch_size: int,
                num_workers: int) -> ConfigDict:
    loader.batch_size = batch_size
    loader.num_workers = num_workers
    loader.persistent_workers = num_workers > 0
    ds = loader.dataset
    inner = ds.dataset if ds.get('type') == 'ClientPartitionedDataset' else ds
    inner.data_root = data_root
    return ds


def tiny_cfg(config: str,
             data_root: str,
             work_dir: str,
             rounds: int = 1,
             num_clients: int = 4,
             local_iters: Optional[int] = 2,
             local_epochs: Optional[int] = None,
             batch_size: int = 8,
             num_workers: int = 0,
             extra: Optional[dict] = None) -> Config:
    """Load ``configs/...`` and shrink it.

    Args:
        config (str): Config path relative to the repository root.
        data_root (str): Tiny Fashion-MNIST folder.
        work_dir (str): Work directory.
        rounds (int): Rounds (federated) or epochs (``EpochBasedTrainLoop``).
        num_clients (int): Clients of a partition that has more than one.
        local_iters (int, optional): Local iterations per round.
        local_epochs (int, optional): Local epochs per round instead.
        batch_size (int): Train batch size.
        num_workers (int): Dataloader workers.
        extra (dict, optional): ``merge_from_dict`` overrides.
    """
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
    _shrink_model(cfg.model)
    ds = _point_data(cfg.train_dataloader, data_root, batch_size, num_workers)
    part = ds.get('partition')
    if part is not None and part.num_clients > 1:
        part.num_clients = num_clients
        if part.get('type') == 'Dirichlet':
            part.min_size = batch_size
    for key in ('val_dataloader', 'test_dataloader'):
        if cfg.get(key):
            _point_data(cfg[key], data_root, 32, 0)
    if 'rounds' in cfg.train_cfg:
        cfg.train_cfg.rounds = rounds
        cfg.train_cfg.local_iters = local_iters
        cfg.train_cfg.local_epochs = local_epochs
        if 'feat_batch_size' in (cfg.train_cfg.get('server') or {}):
            cfg.train_cfg.server.feat_batch_size = 32
    else:
        cfg.train_cfg.max_epochs = rounds
        cfg.train_cfg.val_interval = rounds
    return finish_tiny_cfg(cfg, rounds, extra)
