"""Speed of a study run in fp32 and in bf16 (autocast + channels-last).

    OMP_NUM_THREADS=1 python benchmarks/bench_study_precision.py \
        [--config configs/study/simclr_r18w16_fmnist_dec.py] \
        [--images 1280] [--local-epochs 2] [--pairs 3]

Trains the study config through the real federated loop (mmengine Runner,
10 clients, one round) once in each precision per pair, orders alternated
(fp32 first, then bf16 first, ...), and prints the images per second of
each side inside the training loop (start-up and evaluation excluded), the
per-pair ratios and their median. Precision is the study's size knob
``study_precision`` (configs/study/_base_/study_fmnist.py).
"""
import argparse
import os
import tempfile

from _common import (ROOT, Stopwatch, as_hook, fmnist_root, machine_line,
                     run_pairs)

STUDY_CONFIG = 'configs/study/simclr_r18w16_fmnist_dec.py'


def build_cfg(config: str, precision: str, images: int, local_epochs: int,
              work_dir: str):
    """The study config at a short size in one precision."""
    from mmengine.config import Config
    env = dict(STUDY_PRECISION=precision, STUDY_TRAIN_SUBSET=str(images),
               STUDY_ROUNDS='1', STUDY_LOCAL_EPOCHS=str(local_epochs))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = Config.fromfile(os.path.join(ROOT, config))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.dataset.data_root = fmnist_root()
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1000)
    cfg.log_level = 'WARNING'
    return cfg


def train_rate(cfg) -> float:
    """Images per second inside the training loop."""
    from mmengine.runner import Runner
    watch = Stopwatch()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(as_hook(watch))
    runner.train()
    return watch.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=STUDY_CONFIG)
    parser.add_argument('--images', type=int, default=1280)
    parser.add_argument('--local-epochs', type=int, default=2)
    parser.add_argument('--pairs', type=int, default=3)
    args = parser.parse_args()
    import decssl_mm  # noqa: F401
    print(machine_line())
    with tempfile.TemporaryDirectory() as d:

        def side(index: int, precision: str) -> float:
            cfg = build_cfg(args.config, precision, args.images,
                            args.local_epochs, f'{d}/{precision}{index}')
            rate = train_rate(cfg)
            print(f'  pair {index + 1}: {precision} {rate:.1f} img/s',
                  flush=True)
            return rate

        runs = run_pairs(lambda i: side(i, 'fp32'),
                         lambda i: side(i, 'bf16'), args.pairs, 'fp32',
                         'bf16')
    for line in runs.lines(' img/s', '.1f'):
        print(line)
    print(f'{args.config}: {args.images} images over 10 clients, 1 round x '
          f'{args.local_epochs} local epochs')
    print(runs.summary('images/s'))


if __name__ == '__main__':
    main()
