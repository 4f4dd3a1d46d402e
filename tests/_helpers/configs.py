"""Tiny federated configs built from the project's real config files."""
import os.path as osp
import uuid
from typing import Optional

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def tiny_federated_cfg(config: str,
                       data_root: str,
                       work_dir: str,
                       rounds: int = 1,
                       num_clients: int = 4,
                       local_iters: Optional[int] = 2,
                       local_epochs: Optional[int] = None,
                       batch_size: int = 8,
                       num_workers: int = 0,
                       extra: Optional[dict] = None) -> Config:
    """Load ``configs/...`` and shrink it to a few-second CPU run.

    The backbone keeps its architecture but with 8 base channels; data is
    the tiny Fashion-MNIST written by the tests.
    """
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
    cfg.model.backbone.base_channels = 8
    cfg.model.backbone.stem_channels = 8
    feat = 8 * 8 if cfg.model.backbone.depth in (18, 34) else 8 * 32
    neck = cfg.model.get('neck')
    if neck is not None and 'in_channels' in neck:
        neck.in_channels = feat
    train = cfg.train_dataloader
    train.batch_size = batch_size
    train.num_workers = num_workers
    train.persistent_workers = num_workers > 0
    train.dataset.dataset.data_root = data_root
    part = train.dataset.partition
    part.num_clients = num_clients
    if part.get('type') == 'Dirichlet':
        part.min_size = batch_size
    cfg.train_cfg.rounds = rounds
    cfg.train_cfg.local_iters = local_iters
    cfg.train_cfg.local_epochs = local_epochs
    return finish_tiny_cfg(cfg, rounds, extra)


def finish_tiny_cfg(cfg: Config, rounds: int,
                    extra: Optional[dict] = None) -> Config:
    """Schedule over ``rounds``, log/checkpoint every round, gloo, quiet."""
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True,
             begin=0, end=rounds)
    ]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.log_level = 'WARNING'
    if extra:
        cfg.merge_from_dict(extra)
    return cfg


def dump_eval_cfg(cfg: Config, path: str) -> str:
    """Write the part of a trained config that ``knn_eval.py`` reads (model,
    preprocessor, kNN loaders) to ``path``; returns ``path``."""
    Config(dict(default_scope='decssl_mm', model=cfg.model.to_dict(),
                data_preprocessor=cfg.data_preprocessor.to_dict(),
                randomness=dict(seed=0),
                knn_train_dataloader=cfg.knn_train_dataloader.to_dict(),
                knn_val_dataloader=cfg.knn_val_dataloader.to_dict())
           ).dump(path)
    return path
