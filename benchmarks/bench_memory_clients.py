"""Peak RSS of a federated run with many clients vs few clients.

Each setting runs in its own process (MoCo v2 ResNet-18 at 32 px, the same
images, every client in every round, 1 local iteration per client) and
reports its peak resident memory. Client state lives on disk, so memory
should not grow with the number of clients. The two settings run in pairs,
in orders AB, BA, AB, ... (A = the first client count); each pair's ratio
is printed and the summary is the median of the pair ratios with their
range.

    .venv/bin/python benchmarks/bench_memory_clients.py [--clients 2 100]
        [--rounds 3] [--images 2000] [--pairs 2] [--width W]

Goal: peak RSS(many clients) <= 1.15 x peak RSS(few clients).
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import tempfile

from _common import (ROOT, fmnist_root, machine_line, quiet_env,
                     run_pairs)

CHILD = r'''
import json, sys, resource
sys.path.insert(0, {root!r})
import decssl_mm
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile({root!r} + '/configs/decssl/mocov2_r18_fmnist_dir0.1.py')
cfg.work_dir = {work!r}
d = cfg.train_dataloader
d.dataset.dataset.data_root = {data!r}
d.dataset.dataset.subset = {images}
d.dataset.partition = dict(type='IID', num_clients={k}, seed=0)
d.batch_size = 16
if {width}:
    cfg.model.backbone.base_channels = {width}
    cfg.model.backbone.stem_channels = {width}
    cfg.model.neck.in_channels = 8 * {width}
d.num_workers = 0
d.persistent_workers = False
cfg.train_cfg.rounds = {rounds}
cfg.train_cfg.local_epochs = None
cfg.train_cfg.local_iters = 1
cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max={rounds},
                            by_epoch=True, begin=0, end={rounds})]
cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                    max_keep_ckpts=1)
cfg.default_hooks.logger.interval = 1000
cfg.log_level = 'WARNING'
runner = Runner.from_cfg(cfg)
runner.train()
print(json.dumps(dict(
    clients={k},
    rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    state_files=runner.train_loop.store.num_files())))
'''


def measure(k: int, rounds: int, images: int, data: str,
            width: int = 0) -> dict:
    """Peak RSS and client-state files of one run in a fresh process."""
    with tempfile.TemporaryDirectory() as work:
        code = CHILD.format(root=ROOT, work=work, data=data, k=k,
                            rounds=rounds, images=images, width=width)
        out = subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clients', type=int, nargs=2, default=[2, 100],
                        metavar=('FEW', 'MANY'),
                        help='the two client counts compared')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--images', type=int, default=2000,
                        help='training images split among the clients')
    parser.add_argument('--pairs', type=int, default=2,
                        help='pairs of runs, orders AB, BA, AB, ...')
    parser.add_argument('--width', type=int, default=0,
                        help='backbone base channels (default: the '
                        'config\'s 64)')
    args = parser.parse_args()
    few, many = args.clients
    if min(few, many) < 1 or max(few, many) > args.images:
        parser.error(f'--clients {few} {many}: each count must be between '
                     f'1 and --images ({args.images})')
    quiet_env()
    print(machine_line())
    data = fmnist_root()

    def side(k: int):
        def measure_k(i: int) -> float:
            r = measure(k, args.rounds, args.images, data, args.width)
            print(f"pair {i + 1}: {r['clients']:>5} clients: peak RSS "
                  f"{r['rss_mb']:.0f} MiB, client state files on disk "
                  f"{r['state_files']}")
            return r['rss_mb']
        return measure_k

    runs = run_pairs(side(few), side(many), args.pairs, f'{few} clients',
                     f'{many} clients')
    for line in runs.lines(' MiB', '.0f'):
        print(line)
    print(runs.summary('peak RSS') + ' (goal <= 1.15)')


if __name__ == '__main__':
    main()
