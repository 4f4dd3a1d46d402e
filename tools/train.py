"""Train a model (federated or centralized) from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...]
                                 [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='latest',
        help='resume from the given checkpoint; without a path, resume from '
        'the latest checkpoint in the work directory (an error naming the '
        'newest readable one if it is unreadable); "auto" falls back to the '
        'newest readable checkpoint with a warning')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip validation during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the total batch size')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='do not pin memory in the dataloaders')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='do not keep dataloader workers between epochs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.rounds=10 '
        'train_dataloader.dataset.partition.alpha=0.1')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun passes --local-rank (older launchers --local_rank)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the command-line flags into the config."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume in ('auto', 'latest'):
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True

    def set_loader_flag(key: str, value: bool) -> None:
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(name, None)
            if loader is not None and key in loader:
                loader[key] = value

    if args.no_pin_memory:
        set_loader_flag('pin_memory', False)
    if args.no_persistent_workers:
        set_loader_flag('persistent_workers', False)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    return cfg


def main() -> None:
    args = parse_args()
    import decssl_mm  # noqa: F401  (compat fixes + registration)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    from decssl_mm.utils.config_check import check_config
    check_config(cfg)
    from decssl_mm.engine.workdir_lock import acquire_work_dir_lock
    acquire_work_dir_lock(cfg.work_dir)  # one run per work dir
    if args.resume in ('auto', 'latest'):
        from decssl_mm.engine.resume_choice import choose_resume_checkpoint
        cfg.load_from = choose_resume_checkpoint(
            cfg.work_dir, fallback=args.resume == 'auto')
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
