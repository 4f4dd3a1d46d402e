"""A prepared one-GPU check of federated rounds (about 2-4 minutes on a GPU).

Measures, and prints (and writes to ``--out``/gpu_round.json):

1. images/s of centralized (mmengine ``EpochBasedTrainLoop``) vs federated
   (10 IID clients, all per round, 1 local epoch, FedAvg) training of SimCLR
   ResNet-18 in its CIFAR form at 32 px, same images, batch and workers, in
   pairs (orders AB, BA, ...), with bf16 mixed precision and channels-last
   (``configs/decssl/simclr_r18_fmnist_dir0.1_amp.py``) on a GPU; the
   paired median of federated / centralized;
2. the aggregation share of the round at ResNet-50 size (SimCLR with a
   CIFAR-form ResNet-50): the time in ``server.add`` (update checks and
   running sums) and ``server.finish_round`` over the round time, rounds
   after the first;
3. peak GPU memory (``torch.cuda.max_memory_allocated``) of each run.

Nothing is downloaded: Fashion-MNIST from ``--data`` (default: ``.gpu/data``
of ``shared/gpu/prepare.sh``, else the Debian package's folder), else
synthetic 28 px images.

On the GPU machine (the prefix printed by ``shared/gpu/prepare.sh``)::

    python3 -m pip install -q --no-index --no-deps --no-compile \
        --target /tmp/site .gpu/whl/*.whl && \
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 && \
    python3 benchmarks/gpu_round.py --out $OUT

Its own test on a CPU, at a tiny size (float32: mmengine's
``AmpOptimWrapper`` needs a GPU)::

    python benchmarks/gpu_round.py --device cpu --tiny --out /tmp/gpu_round
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
AMP_CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1_amp.py'
FP32_CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    p.add_argument('--tiny', action='store_true',
                   help='a few images and 8-channel networks (CPU test)')
    p.add_argument('--out', default=None,
                   help='folder for gpu_round.json (and nothing else)')
    p.add_argument('--data', default=None, help='Fashion-MNIST folder')
    p.add_argument('--images', type=int, default=None)
    p.add_argument('--epochs', type=int, default=None,
                   help='epochs = rounds of each throughput run')
    p.add_argument('--pairs', type=int, default=None)
    p.add_argument('--workers', type=int, default=None)
    p.add_argument('--clients', type=int, default=10)
    p.add_argument('--precision', choices=['bf16', 'fp32'], default=None,
                   help='default: bf16 on cuda, fp32 on cpu')
    args = p.parse_args(argv)
    tiny = dict(images=160, epochs=1, pairs=1, workers=0)
    full = dict(images=10000, epochs=2, pairs=2, workers=8)
    for k, v in (tiny if args.tiny else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.precision is None:
        args.precision = 'bf16' if args.device == 'cuda' else 'fp32'
    return args


def data_root(given: Optional[str]) -> str:
    """``--data``, ``.gpu/data``, the Debian folder, or synthetic images."""
    from _common import fmnist_root
    for d in (given, osp.join(ROOT, '.gpu', 'data')):
        if d and osp.isfile(osp.join(d, 'train-images-idx3-ubyte.gz')):
            return d
    return fmnist_root()


def quiet(cfg) -> None:
    """No checkpoints, few log lines."""
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    cfg.default_hooks.logger.interval = 1000
    cfg.log_level = 'WARNING'


class Memory:
    """Peak memory of the device since the last :meth:`reset` (MiB)."""

    def __init__(self, device: str) -> None:
        import torch
        self.cuda = device == 'cuda' and torch.cuda.is_available()

    def reset(self) -> None:
        """Free what earlier runs left (runners hold reference cycles)
        and start a new peak."""
        import gc
        gc.collect()
        if self.cuda:
            import torch
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float:
        import torch
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def throughput(args, root: str, work: str, mem: Memory) -> dict:
    """Paired centralized vs federated images/s (part 1)."""
    from _common import run_pairs, set_width
    from bench_federated_overhead import build_cfgs, run
    config = AMP_CONFIG if args.precision == 'bf16' else FP32_CONFIG
    peaks: Dict[str, List[float]] = {'centralized': [], 'federated': []}

    def side(which: int):
        name = ('centralized', 'federated')[which]

        def go(i: int) -> float:
            cfgs = build_cfgs(args.images, args.epochs, args.workers,
                              f'{work}/tp{i}', args.clients, config, root)
            cfg = cfgs[which]
            if args.tiny:
                set_width(cfg.model, 8)
            quiet(cfg)
            mem.reset()
            rate = run(cfg).rate
            peaks[name].append(mem.peak_mib())
            print(f'  pair {i + 1} {name}: {rate:.1f} images/s', flush=True)
            return rate

        return go

    runs = run_pairs(side(0), side(1), args.pairs, 'centralized',
                     'federated')
    return dict(config=config, precision=args.precision,
                clients=args.clients, images=args.images,
                epochs=args.epochs, workers=args.workers,
                centralized=runs.a, federated=runs.b, ratios=runs.ratios,
                ratio_median=runs.median,
                summary=runs.summary('images/s'),
                peak_mib={k: max(v) for k, v in peaks.items()})


def aggregation_share(args, root: str, work: str, mem: Memory) -> dict:
    """Share of the round in ``server.add`` + ``finish_round`` (part 2)."""
    from _common import set_width
    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from bench_federated_overhead import build_cfgs
    config = AMP_CONFIG if args.precision == 'bf16' else FP32_CONFIG
    images = max(args.clients * 8, args.images // 5)
    cfg = build_cfgs(images, 3, args.workers, f'{work}/r50', args.clients,
                     config, root)[1]
    cfg.model.backbone.depth = 50
    cfg.model.neck.in_channels = 2048
    if args.tiny:
        set_width(cfg.model, 4)
    quiet(cfg)
    sync = torch.cuda.synchronize if mem.cuda else (lambda: None)
    spent = {'agg': 0.0}
    rounds: List[dict] = []
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    server = runner.train_loop.server

    def timed(fn):
        def call(*a, **k):
            sync()
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                sync()
                spent['agg'] += time.perf_counter() - t
        return call

    server.add = timed(server.add)
    server.finish_round = timed(server.finish_round)

    class RoundClock(Hook):
        priority = 'VERY_LOW'

        def before_train_epoch(self, runner):
            sync()
            spent['agg'] = 0.0
            self.t = time.perf_counter()

        def after_train_epoch(self, runner):
            sync()
            rounds.append(dict(round_s=time.perf_counter() - self.t,
                               agg_s=spent['agg']))

    runner.register_hook(RoundClock())
    mem.reset()
    runner.train()
    params = sum(p.numel() for p in runner.train_loop.model.parameters())
    later = rounds[1:] or rounds
    shares = [r['agg_s'] / r['round_s'] for r in later]
    return dict(params=params, images=images, rounds=rounds,
                share_median=statistics.median(shares),
                peak_mib=mem.peak_mib())


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.device == 'cpu':  # before torch is imported
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    os.environ.setdefault('OMP_NUM_THREADS', '2' if args.tiny else '4')
    sys.path.insert(0, HERE)
    sys.path.insert(0, ROOT)
    import torch
    import decssl_mm  # noqa: F401
    from _common import machine_line
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no GPU visible (use --device cpu)')
    t0 = time.perf_counter()
    print(machine_line(), flush=True)
    mem = Memory(args.device)
    root = data_root(args.data)
    with tempfile.TemporaryDirectory() as work:
        print(f'1. centralized vs federated, SimCLR R18 32 px, '
              f'{args.clients} clients, {args.precision}', flush=True)
        tp = throughput(args, root, work, mem)
        print(f'   {tp["summary"]} (goal >= 0.97)')
        print(f'   peak memory MiB: {tp["peak_mib"]}')
        print('2. aggregation share of the round, ResNet-50 size',
              flush=True)
        agg = aggregation_share(args, root, work, mem)
        print(f'   {agg["params"] / 1e6:.1f} M parameters; aggregation '
              f'{100 * agg["share_median"]:.2f} % of the round (goal <= 1 '
              f'%); rounds: ' + ', '.join(
                  f'{r["agg_s"]:.3f} s of {r["round_s"]:.2f} s'
                  for r in agg['rounds']))
        print(f'   peak memory MiB: {agg["peak_mib"]:.0f}')
    result = dict(machine=machine_line(), device=args.device,
                  tiny=args.tiny, throughput=tp, aggregation=agg,
                  seconds=time.perf_counter() - t0)
    print(f'done in {result["seconds"]:.0f} s')
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'gpu_round.json'), 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
