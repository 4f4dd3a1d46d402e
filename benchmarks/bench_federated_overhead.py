"""Federation overhead: images/s of a federated run vs plain mmpretrain.

Same model (SimCLR, ResNet-18, 32 px), same images (a Fashion-MNIST subset),
same batch size and workers. Centralized: mmengine's EpochBasedTrainLoop
with a shuffling DefaultSampler. Federated: 10 IID clients, all of them per
round, 1 local epoch, FedAvg (weights loaded per client, aggregation, client
state written to disk). The two run in pairs, in orders AB, BA, AB, ...
(A = centralized); each pair's ratio federated / centralized images/s is
printed, and the summary is the median of the pair ratios with their range.

    .venv/bin/python benchmarks/bench_federated_overhead.py [--images 3000]
        [--epochs 2] [--pairs 2]

Goal: federated >= 0.95 x centralized images/s.
"""
import argparse
import tempfile

from _common import (ROOT, Stopwatch, as_hook, fmnist_root, machine_line,
                     quiet_env, run_pairs)


def build_cfgs(images: int, epochs: int, workers: int, work_dir: str):
    from mmengine.config import Config
    import os.path as osp
    fed = Config.fromfile(
        osp.join(ROOT, 'configs/decssl/simclr_r18_fmnist_dir0.1.py'))
    fed.train_dataloader.dataset.dataset.data_root = fmnist_root()
    fed.train_dataloader.dataset.dataset.subset = images
    fed.train_dataloader.dataset.partition = dict(
        type='IID', num_clients=10, seed=0)
    fed.train_dataloader.num_workers = workers
    fed.train_dataloader.persistent_workers = workers > 0
    fed.train_cfg.rounds = epochs
    fed.param_scheduler = [dict(type='CosineAnnealingLR', T_max=epochs,
                                by_epoch=True, begin=0, end=epochs)]
    fed.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    fed.default_hooks.logger.interval = 1000
    fed.log_level = 'WARNING'

    cen = fed.copy()
    cen.train_dataloader = dict(
        batch_size=fed.train_dataloader.batch_size,
        num_workers=workers,
        persistent_workers=workers > 0,
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='default_collate'),
        dataset=fed.train_dataloader.dataset.dataset)
    cen.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cen.pop('model_wrapper_cfg', None)
    fed.work_dir = osp.join(work_dir, 'fed')
    cen.work_dir = osp.join(work_dir, 'cen')
    return cen, fed


def run(cfg) -> float:
    from mmengine.runner import Runner
    watch = Stopwatch()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(as_hook(watch))
    runner.train()
    return watch.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=3000)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--pairs', type=int, default=2,
                        help='pairs of runs, orders AB, BA, AB, ...')
    parser.add_argument('--workers', type=int, default=1)
    args = parser.parse_args()
    quiet_env()
    import decssl_mm  # noqa: F401
    print(machine_line())
    with tempfile.TemporaryDirectory() as d:

        def side(index: int, which: int) -> float:
            cfgs = build_cfgs(args.images, args.epochs, args.workers,
                              f'{d}/{index}')
            return run(cfgs[which])

        runs = run_pairs(lambda i: side(i, 0), lambda i: side(i, 1),
                         args.pairs, 'centralized', 'federated')
    for line in runs.lines(' img/s', '.1f'):
        print(line)
    print('centralized: mmpretrain EpochBasedTrainLoop; federated: 10 '
          'clients, 1 local epoch, FedAvg')
    print(runs.summary('images/s') + ' (goal >= 0.95)')


if __name__ == '__main__':
    main()
