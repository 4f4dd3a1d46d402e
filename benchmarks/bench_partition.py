"""Time the Dirichlet partition of an ImageNet-sized label array.

    python benchmarks/bench_partition.py [--samples 1281167] [--classes 1000]
        [--clients 1000] [--alpha 0.1] [--repeat 3]

Prints the best wall-clock time of ``repeat`` runs of
``Dirichlet(num_clients, alpha, seed)(labels)`` (validation and statistics
excluded) and, separately, the time of ``Partition.validate()``,
``Partition.stats()`` and a JSON save/load round trip.
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from decssl_mm.partition import Dirichlet, Partition  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark the Dirichlet client partition.')
    parser.add_argument('--samples', type=int, default=1281167,
                        help='number of labels (default: ImageNet-1k train)')
    parser.add_argument('--classes', type=int, default=1000,
                        help='number of classes')
    parser.add_argument('--clients', type=int, default=1000,
                        help='number of clients')
    parser.add_argument('--alpha', type=float, default=0.1,
                        help='Dirichlet concentration')
    parser.add_argument('--balance', action='store_true',
                        help='enable self-balancing')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs; the best one is reported')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    return parser.parse_args()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    labels = np.random.default_rng(args.seed).integers(
        0, args.classes, args.samples)
    partitioner = Dirichlet(
        num_clients=args.clients,
        alpha=args.alpha,
        balance=args.balance,
        seed=args.seed)
    best = float('inf')
    for _ in range(max(args.repeat, 1)):
        part, seconds = timed(lambda: partitioner(labels))
        best = min(best, seconds)
    print(f'Dirichlet(alpha={args.alpha}, balance={args.balance}): '
          f'{args.samples} labels, {args.classes} classes -> '
          f'{args.clients} clients: {best:.3f} s '
          f'(best of {max(args.repeat, 1)})')
    _, seconds = timed(part.validate)
    print(f'validate: {seconds:.3f} s')
    _, seconds = timed(lambda: part.stats(labels))
    print(f'stats: {seconds:.3f} s')
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'partition.json')
        _, seconds = timed(lambda: part.save(path))
        print(f'save: {seconds:.3f} s ({osp.getsize(path) / 2**20:.1f} MiB)')
        loaded, seconds = timed(lambda: Partition.load(path))
        print(f'load: {seconds:.3f} s')
        assert loaded == part


if __name__ == '__main__':
    main()
