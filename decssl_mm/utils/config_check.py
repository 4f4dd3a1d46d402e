"""Checks of a config that run before anything is built or trained."""
import os.path as osp

from mmengine.config import Config

from .config_walk import DATALOADER_KEYS, iter_dataset_cfgs
from .preflight import check_registered_types
from .stem_check import warn_stem_mismatch


def check_dataset_paths(cfg: Config) -> None:
    """Fail early when a data root or annotation file does not exist.

    Args:
        cfg (Config): The full config.

    Raises:
        FileNotFoundError: Naming the config key and the missing path.
    """
    for loader in DATALOADER_KEYS:
        lcfg = cfg.get(loader)
        if not lcfg or 'dataset' not in lcfg:
            continue
        for path, ds in iter_dataset_cfgs(lcfg['dataset'],
                                          f'{loader}.dataset'):
            root = ds.get('data_root') or ''
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'{path}.data_root: directory not found: {root}')
            ann = ds.get('ann_file')
            if ann:
                full = ann if osp.isabs(ann) or not root else osp.join(
                    root, ann)
                if not osp.isfile(full):
                    raise FileNotFoundError(
                        f'{path}.ann_file: file not found: {full}')
            pfile = ds.get('partition_file')
            if pfile and not ds.get('partition') and not osp.isfile(pfile):
                raise FileNotFoundError(
                    f'{path}.partition_file: file not found: {pfile}')


def check_train_cfg(cfg: Config) -> None:
    """Validate the scalar settings of a federated ``train_cfg``.

    Raises:
        ValueError: Naming the offending ``train_cfg`` key.
    """
    from decssl_mm.federated.loop_checks import (check_loop_type,
                                                 validate_schedule)
    tcfg = cfg.get('train_cfg') or {}
    check_loop_type(tcfg.get('type'))
    if tcfg.get('type') != 'FederatedTrainLoop':
        return
    validate_schedule(tcfg.get('rounds'), tcfg.get('local_epochs'),
                      tcfg.get('local_iters'))
    p = tcfg.get('participation')
    if p is not None and not 0 < p <= 1:
        raise ValueError(f'train_cfg.participation must be in (0, 1], got {p}.')


def check_config(cfg: Config) -> None:
    """Run every pre-flight check on a training config."""
    check_train_cfg(cfg)
    check_registered_types(cfg)
    check_dataset_paths(cfg)
    warn_stem_mismatch(cfg)  # a warning only: CIFAR stem on large crops
