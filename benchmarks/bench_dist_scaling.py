"""Round time with 2 processes vs 1 process on this machine.

Runs the same federated config (SimCLR ResNet-18, 10 clients, all per round,
1 local epoch over a Fashion-MNIST subset) with `tools/train.py` and with
`tools/dist_train.sh CONFIG 2` (gloo on CPU), and compares the mean round
time (first round excluded: start-up). The two run in pairs, in orders AB,
BA, AB, ... (A = 1 process); each pair's ratio is printed and the summary is
the median of the pair ratios with their range. Each pair also compares the
two final global models: they must be bitwise equal (the clients of a round
are shared out among the ranks; what a client computes does not depend on
where it runs).

Two designs of the measurement:
- ``--threads-per-rank 1`` (the design figure): every process has one
  thread, so 2 ranks have twice the compute of 1 rank; the ratio says how
  much of the round the ranks really share out. Goal <= 0.55.
- default (the machine figure): every process has cores / processes
  threads, so both runs use the whole machine; the ratio says whether
  ranks beat threads on this machine.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dist_scaling.py \
        --threads-per-rank 1 [--images 2000] [--rounds 3] [--pairs 3]
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile

import torch
from _common import ROOT, fmnist_root, machine_line, run_pairs

ROUND_RE = re.compile(r'Round \[(\d+)/(\d+)\] \d+ clients, ([\d.]+) s')


def round_times(log: str):
    return [float(m.group(3)) for m in ROUND_RE.finditer(log)]


def run(cmd, threads: int) -> list:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=ROOT, PYTHON=sys.executable)
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise SystemExit(out.returncode)
    return round_times(out.stdout + out.stderr)


def same_weights(a: str, b: str) -> bool:
    """Whether two checkpoints hold bitwise-equal state dicts."""
    sa = torch.load(a, map_location='cpu', weights_only=False)['state_dict']
    sb = torch.load(b, map_location='cpu', weights_only=False)['state_dict']
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) for k in sa)


def mean_after_first(times: list) -> float:
    """Mean round time without the first round (start-up)."""
    rest = times[1:] or times
    return sum(rest) / len(rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=2000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--pairs', type=int, default=2,
                        help='pairs of runs, orders AB, BA, AB, ...')
    parser.add_argument('--threads-per-rank', type=int, default=None,
                        help='threads of every process (default: cores / '
                        'processes, the whole machine for both runs)')
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    one_threads = args.threads_per_rank or cores
    two_threads = args.threads_per_rank or max(1, cores // 2)
    goal = 0.55 if args.threads_per_rank == 1 else 0.6
    print(machine_line())
    with tempfile.TemporaryDirectory() as d:
        opts = [
            '--cfg-options',
            f'train_dataloader.dataset.dataset.data_root={fmnist_root()}',
            f'train_dataloader.dataset.dataset.subset={args.images}',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            f'train_cfg.rounds={args.rounds}',
            f'default_hooks.checkpoint.interval={args.rounds}',
            'log_level=INFO',
        ]
        # the Dirichlet twin with 10 IID clients (a _base_ child: a
        # --cfg-options type change would keep the Dirichlet keys)
        cfg = osp.join(d, 'simclr_r18_fmnist_iid10.py')
        with open(cfg, 'w') as f:
            f.write(f"_base_ = ['{ROOT}/configs/decssl/"
                    "simclr_r18_fmnist_dir0.1.py']\n"
                    'train_dataloader = dict(dataset=dict(partition=dict('
                    "_delete_=True, type='IID', num_clients=10, seed=0)))\n")

        def one(i: int) -> float:
            times = run([sys.executable, 'tools/train.py', cfg,
                         '--work-dir', osp.join(d, f'one{i}')] + opts,
                        one_threads)
            print(f'1 process x {one_threads} threads, pair {i + 1}: '
                  f'rounds {times}')
            return mean_after_first(times)

        def two(i: int) -> float:
            times = run(['bash', 'tools/dist_train.sh', cfg, '2',
                         '--work-dir', osp.join(d, f'two{i}')] + opts,
                        two_threads)
            # both ranks log; take rank 0's lines (the first of each pair)
            times = times[::2] if len(times) == 2 * args.rounds else times
            print(f'2 processes x {two_threads} threads, pair {i + 1}: '
                  f'rounds {times}')
            return mean_after_first(times)

        runs = run_pairs(one, two, args.pairs, '1 process', '2 processes')
        ckpt = f'epoch_{args.rounds}.pth'
        equal = [
            same_weights(osp.join(d, f'one{i}', ckpt),
                         osp.join(d, f'two{i}', ckpt))
            for i in range(args.pairs)
        ]
    for line in runs.lines(' s', '.1f'):
        print(line)
    print('final global model, 2 processes == 1 process (bitwise), per '
          f'pair: {equal}')
    print(runs.summary('mean round time') + f' (goal <= {goal})')


if __name__ == '__main__':
    main()
