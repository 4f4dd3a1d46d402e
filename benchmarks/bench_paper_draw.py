"""Success rate of one Dirichlet draw with size bounds (the paper's draw).

For balanced labels (``--classes`` classes of ``--per-class`` samples),
each seed ``0 .. --draws - 1`` makes one draw of
``Dirichlet(num_clients, alpha, size_range)`` (``max_tries=1``) and counts
whether every client lands within the bounds; the rate ``p`` gives the
chance that ``max_tries`` draws find a split, ``1 - (1 - p) ** max_tries``.

    python benchmarks/bench_paper_draw.py [--classes 10] [--per-class 200]
        [--clients 10 20] [--alphas 1 0.1 0.02] [--draws 2000]
        [--size-range 0.5 1.5] [--max-tries 1000]
"""
import argparse
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from decssl_mm.partition.dirichlet import dirichlet_assignment  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--per-class', type=int, default=200)
    p.add_argument('--clients', type=int, nargs='+', default=[10, 20])
    p.add_argument('--alphas', type=float, nargs='+', default=[1, 0.1, 0.02])
    p.add_argument('--draws', type=int, default=2000,
                   help='seeds tried, one draw each')
    p.add_argument('--size-range', type=float, nargs=2, default=[0.5, 1.5])
    p.add_argument('--max-tries', type=int, default=1000)
    return p.parse_args()


def success_rate(codes: np.ndarray, num_classes: int, num_clients: int,
                 alpha: float, size_range, draws: int) -> float:
    """Fraction of seeds whose single draw meets the bounds."""
    ok = 0
    for seed in range(draws):
        try:
            dirichlet_assignment(codes, num_classes, num_clients, alpha,
                                 np.random.default_rng(seed), min_size=0,
                                 max_tries=1, size_range=size_range)
        except ValueError:
            continue
        ok += 1
    return ok / draws


def main() -> None:
    args = parse_args()
    codes = np.repeat(np.arange(args.classes), args.per_class)
    print(f'{args.classes} classes x {args.per_class} samples, size_range '
          f'{tuple(args.size_range)}, {args.draws} draws per setting')
    print(f"{'clients':>7} {'alpha':>6} {'p(draw)':>8} "
          f"{f'p({args.max_tries} tries)':>16} {'s':>5}")
    for k in args.clients:
        for alpha in args.alphas:
            t0 = time.perf_counter()
            p = success_rate(codes, args.classes, k, alpha, args.size_range,
                             args.draws)
            within = 1 - (1 - p)**args.max_tries
            print(f'{k:>7} {alpha:>6g} {p:>8.4f} {within:>16.3f} '
                  f'{time.perf_counter() - t0:>5.1f}')


if __name__ == '__main__':
    main()
