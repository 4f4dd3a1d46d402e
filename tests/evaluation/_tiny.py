"""A study config shrunk to a few-second run on the tiny Fashion-MNIST."""
import os.path as osp

from mmengine.config import Config

from _helpers.configs import ROOT, tiny_federated_cfg

SIMCLR = 'configs/study/simclr_r18w16_fmnist_dec.py'
DEC_SL = 'configs/study/supervised_r18w16_fmnist_dec.py'


def tiny_study_cfg(config: str, data_root: str, work_dir: str,
                   **kwargs) -> Config:
    """``config`` at 8 channels, its evaluation loaders on ``data_root``."""
    cfg = tiny_federated_cfg(config, data_root, work_dir, **kwargs)
    for key in ('knn_train_dataloader', 'knn_val_dataloader'):
        cfg[key].dataset.data_root = data_root
        cfg[key].dataset.subset = None
        cfg[key].batch_size = 64
    if cfg.model.get('head', {}).get('in_channels'):
        cfg.model.head.in_channels = 64
    cfg.filename = osp.join(ROOT, config)
    return cfg
