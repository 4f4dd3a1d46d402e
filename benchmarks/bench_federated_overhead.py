"""Federation overhead: images/s of a federated run vs plain mmpretrain.

Same model (SimCLR, ResNet-18, 32 px), same images (a Fashion-MNIST subset),
same batch size and workers. Centralized: mmengine's EpochBasedTrainLoop
with a shuffling DefaultSampler. Federated: 10 IID clients (``--clients``),
all of them per round, 1 local epoch, FedAvg (weights loaded per client,
aggregation, client state written to disk when a client keeps any). The two run in pairs, in orders AB, BA, AB, ...
(A = centralized); each pair's ratio federated / centralized images/s is
printed, and the summary is the median of the pair ratios with their range.
Beside it, an accounting that the machine's speed drift does not blur:
each run's time inside and outside its local steps (the steps are the same
work on both sides), the federated run's extra time outside them per
client, and the ratio with the pair's mean step time on both sides.

    .venv/bin/python benchmarks/bench_federated_overhead.py [--images 3000]
        [--epochs 2] [--pairs 2] [--clients 10] [--batch-size B]
        [--width W]

Goal: federated >= 0.97 x centralized images/s at 10 clients, >= 0.93 at
100 clients (where per-client cost dominates).
"""
import argparse
import statistics
import tempfile
from typing import List, Optional

from _common import (ROOT, Stopwatch, as_hook, fmnist_root, machine_line,
                     quiet_env, run_pairs, set_width)


CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def build_cfgs(images: int, epochs: int, workers: int, work_dir: str,
               clients: int = 10, config: str = CONFIG,
               data_root: Optional[str] = None):
    """The centralized and the federated config of one pair.

    Args:
        images (int): Training images (a Fashion-MNIST subset).
        epochs (int): Epochs (centralized) = rounds (federated).
        workers (int): Dataloader workers of both.
        work_dir (str): Parent of both work dirs.
        clients (int): IID clients of the federated run. Defaults to 10.
        config (str): Federated config, relative to the repository root.
        data_root (str, optional): Fashion-MNIST folder. Defaults to
            :func:`fmnist_root`.

    Returns:
        tuple: ``(centralized, federated)`` configs.
    """
    from mmengine.config import Config
    import os.path as osp
    fed = Config.fromfile(osp.join(ROOT, config))
    fed.train_dataloader.dataset.dataset.data_root = \
        data_root or fmnist_root()
    fed.train_dataloader.dataset.dataset.subset = images
    fed.train_dataloader.dataset.partition = dict(
        type='IID', num_clients=clients, seed=0)
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


def run(cfg) -> Stopwatch:
    from mmengine.runner import Runner
    watch = Stopwatch()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(as_hook(watch))
    runner.train()
    return watch


def accounting(cen: List[Stopwatch], fed: List[Stopwatch],
               clients: int, rounds: int, orders: List[str]) -> List[str]:
    """What a federated run spends outside its local steps, pair by pair.

    The local steps are the same work on both sides; the machine's speed
    moves them by +-10 % between runs, which hides a few per cent of
    federation cost in the images/s ratio. Per pair: the federated run's
    extra time outside the steps (data loading plus everything a client
    and a round cost besides training), per client; and the ratio both
    runs would have had with the pair's mean step time (``(S + O_cen) /
    (S + O_fed)``), which keeps the federation cost and drops the step
    noise.

    Returns:
        list[str]: Report lines.
    """
    extra_ms, normed = [], []
    lines = []
    for i, (c, f) in enumerate(zip(cen, fed)):
        per_client = (f.outside_seconds - c.outside_seconds) / (
            clients * rounds) * 1e3
        steps = (c.step_seconds + f.step_seconds) / 2
        ratio = (steps + c.outside_seconds) / (steps + f.outside_seconds)
        extra_ms.append(per_client)
        normed.append(ratio)
        lines.append(
            f'pair {i + 1} ({orders[i]}): steps {c.step_seconds:.2f} / '
            f'{f.step_seconds:.2f} s, outside the steps '
            f'{c.outside_seconds:.2f} / {f.outside_seconds:.2f} s '
            f'(centralized / federated): {per_client:+.2f} ms a client, '
            f'equal-step ratio {ratio:.3f}')
    lines.append(
        'federation cost outside the local steps: paired median '
        f'{statistics.median(extra_ms):+.2f} ms a client (range '
        f'{min(extra_ms):+.2f} to {max(extra_ms):+.2f}); equal-step ratio '
        f'paired median {statistics.median(normed):.3f} (range '
        f'{min(normed):.3f} to {max(normed):.3f})')
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=3000)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--pairs', type=int, default=2,
                        help='pairs of runs, orders AB, BA, AB, ...')
    parser.add_argument('--workers', type=int, default=1)
    parser.add_argument('--clients', type=int, default=10,
                        help='IID clients of the federated run')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='batch size of both (default: the config\'s)')
    parser.add_argument('--width', type=int, default=None,
                        help='backbone base channels of both (default: the '
                        'config\'s 64); e.g. 8 where per-client cost '
                        'dominates')
    args = parser.parse_args()
    quiet_env()
    import decssl_mm  # noqa: F401
    print(machine_line())
    watches = ([], [])
    with tempfile.TemporaryDirectory() as d:

        def side(index: int, which: int) -> float:
            cfgs = build_cfgs(args.images, args.epochs, args.workers,
                              f'{d}/{index}', args.clients)
            if args.batch_size:
                cfgs[which].train_dataloader.batch_size = args.batch_size
            if args.width:
                set_width(cfgs[which].model, args.width)
            watch = run(cfgs[which])
            watches[which].append(watch)
            print(f"  run {index + 1}: {('centralized', 'federated')[which]}"
                  f' {watch.rate:.1f} img/s', flush=True)
            return watch.rate

        runs = run_pairs(lambda i: side(i, 0), lambda i: side(i, 1),
                         args.pairs, 'centralized', 'federated')
    for line in runs.lines(' img/s', '.1f'):
        print(line)
    for line in accounting(*watches, args.clients, args.epochs, runs.orders):
        print(line)
    print('centralized: mmpretrain EpochBasedTrainLoop; federated: '
          f'{args.clients} clients, 1 local epoch, FedAvg')
    goal = 0.97 if args.clients <= 10 else 0.93
    print(runs.summary('images/s') + f' (goal >= {goal})')


if __name__ == '__main__':
    main()
