"""Peak RSS of a federated run with 100 clients vs 2 clients.

Each setting runs in its own process (SimCLR ResNet-18 at 32 px, the same
images, every client in every round, 1 local iteration per client) and
reports its peak resident memory. Client state lives on disk, so memory
should not grow with the number of clients.

    .venv/bin/python benchmarks/bench_memory_clients.py [--rounds 3]

Goal: peak RSS(100 clients) <= 1.15 x peak RSS(2 clients).
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import tempfile

from _common import ROOT, fmnist_root, quiet_env

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
d.dataset.dataset.subset = 2000
d.dataset.partition = dict(type='IID', num_clients={k}, seed=0)
d.batch_size = 16
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


def measure(k: int, rounds: int, data: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        code = CHILD.format(root=ROOT, work=work, data=data, k=k,
                            rounds=rounds)
        out = subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    quiet_env()
    data = fmnist_root()
    small = measure(2, args.rounds, data)
    big = measure(100, args.rounds, data)
    for r in (small, big):
        print(f"{r['clients']:>4} clients: peak RSS {r['rss_mb']:.0f} MiB, "
              f"client state files on disk {r['state_files']}")
    print(f"ratio 100 / 2 clients: {big['rss_mb'] / small['rss_mb']:.3f} "
          '(goal <= 1.15)')


if __name__ == '__main__':
    main()
