"""Soak test: many rounds x many clients; resources must stay flat.

    python benchmarks/bench_soak.py [--rounds 200] [--clients 50]
                                    [--aggregator FedAvg] [--json OUT]

Runs the real federated loop (mmengine Runner, FederatedTrainLoop, on-disk
client states, CheckpointHook every 10 rounds keeping 2) on a tiny
registered model with a client-local buffer (so every client has a state
file) and a tiny synthetic dataset, all clients in every round. After every
round it records the process RSS, the open file descriptors, the number and
bytes of client-state files and of files in the work dir. It fails (exit 1)
if, between the first window after warm-up and the last one, RSS grows more
than ``--rss-slack-mb``, descriptors grow at all, or the client-state
directory holds more than two versions per client.

With ``--hostile``, one client per round is hostile, in turn: it sends a
``float64`` tensor of ``1e300`` for a ``float32`` key, a NaN tensor, a
``2**63 - 1`` BatchNorm counter, or its data kills the dataloader worker
loading it (two workers per loader). The run must finish with a finite
global model and every other client trained in every round.
"""
import argparse
import dataclasses
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import get_worker_info

from _common import ROOT, quiet_env  # noqa: F401  (sets sys.path)

quiet_env()

import decssl_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import BaseDataset  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from decssl_mm.registry import DATASETS, MODELS  # noqa: E402


@DATASETS.register_module()
class SoakDataset(BaseDataset):
    """``num`` random 1x8x8 images in 10 classes (labels only split)."""

    def __init__(self, num: int = 400, **kwargs) -> None:
        self.num = num
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        return [dict(gt_label=i % 10, idx=i) for i in range(self.num)]

    #: Samples whose loading kills the worker process (``--hostile``).
    doomed: frozenset = frozenset()

    def __getitem__(self, idx: int) -> dict:
        if int(idx) in SoakDataset.doomed and get_worker_info() is not None:
            os._exit(3)  # a transform that kills its worker
        g = torch.Generator().manual_seed(int(idx))
        return dict(inputs=torch.randn(1, 8, 8, generator=g),
                    data_samples=torch.tensor(int(idx) % 10))


@MODELS.register_module()
class SoakModel(BaseModel):
    """A tiny encoder with a client-local memory (``queue``)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 8))
        self.register_buffer('queue', torch.zeros(16, 8))
        self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))

    def forward(self, inputs, data_samples=None, mode='loss'):
        z = self.encoder(inputs)
        noisy = self.encoder(inputs + 0.1 * torch.randn_like(inputs))
        loss = F.mse_loss(z, noisy) + 1e-3 * (z @ self.queue.clone().t()).pow(
            2).mean()
        with torch.no_grad():  # enqueue: client-local state changes
            p = int(self.queue_ptr)
            n = min(z.shape[0], self.queue.shape[0] - p)
            self.queue[p:p + n] = z[:n].detach()
            self.queue_ptr[0] = (p + n) % self.queue.shape[0]
        return dict(loss=loss)


def read_proc_status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return -1


def dir_stats(path: str) -> Dict[str, int]:
    names = [n for n in (os.listdir(path) if osp.isdir(path) else [])
             if not n.endswith('.sha256')]  # checksum sidecars aside
    return dict(files=len(names),
                bytes=sum(osp.getsize(osp.join(path, n)) for n in names))


class SoakMonitor(Hook):
    """Record resources after every round."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.rows: List[dict] = []
        self.t0 = time.perf_counter()
        self.final_state_files = -1

    def after_train(self, runner) -> None:
        # after the loop's last prune: one version per client is left
        self.final_state_files = dir_stats(
            osp.join(runner.work_dir, 'client_states'))['files']

    def after_train_epoch(self, runner) -> None:
        states = dir_stats(osp.join(runner.work_dir, 'client_states'))
        work = dir_stats(runner.work_dir)
        self.rows.append(dict(
            round=runner.train_loop.epoch + 1,
            rss_mb=read_proc_status_kb('VmRSS') / 1024.0,
            open_fds=len(os.listdir('/proc/self/fd')),
            state_files=states['files'],
            state_mb=states['bytes'] / 2**20,
            work_dir_entries=work['files'],
            seconds=time.perf_counter() - self.t0))


#: What the hostile client of round r does: ``HOSTILE_KINDS[r % 4]``.
HOSTILE_KINDS = ('float64_overflow', 'nan', 'huge_int', 'killed_worker')


class HostileClientHook(Hook):
    """Client ``r % num_clients`` of round ``r`` is hostile (see module
    docstring); records the clients trained per round."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.trained: List[int] = []

    @staticmethod
    def _target(runner) -> int:
        loop = runner.train_loop
        return loop.epoch % len(loop.client_sizes)

    def before_train(self, runner) -> None:
        server = runner.train_loop.server
        real_add = server.add

        def add(result):
            kind = HOSTILE_KINDS[runner.train_loop.epoch % 4]
            if int(result.client_id) == self._target(runner):
                state = dict(result.update)
                result = dataclasses.replace(result, update=state)
                w = state['encoder.0.weight']
                if kind == 'float64_overflow':
                    state['encoder.0.weight'] = torch.full(
                        w.shape, 1e300, dtype=torch.float64)
                elif kind == 'nan':
                    state['encoder.0.weight'] = torch.full_like(
                        w, float('nan'))
                elif kind == 'huge_int':
                    state['encoder.1.num_batches_tracked'] = torch.tensor(
                        2**63 - 1)
            return real_add(result)

        server.add = add

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        doomed = frozenset()
        if HOSTILE_KINDS[loop.epoch % 4] == 'killed_worker':
            indices = loop.dataset.client_indices(self._target(runner))
            doomed = frozenset(int(i) for i in indices)
        SoakDataset.doomed = doomed

    def after_train_epoch(self, runner) -> None:
        hub = runner.message_hub
        self.trained.append(
            int(hub.get_scalar('train/federated/clients_ok').current()))


def soak_cfg(work_dir: str, rounds: int, clients: int,
             aggregator: str, num_workers: int = 0) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/default_runtime.py'))
    cfg.merge_from_dict(dict(
        work_dir=work_dir,
        experiment_name='soak',
        model=dict(type='SoakModel'),
        model_wrapper_cfg=dict(type='decssl_mm.FederatedModelWrapper'),
        train_dataloader=dict(
            batch_size=4, num_workers=num_workers, persistent_workers=False,
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='ClientPartitionedDataset',
                dataset=dict(type='SoakDataset', num=8 * clients),
                partition=dict(type='IID', num_clients=clients, seed=0))),
        train_cfg=dict(
            type='FederatedTrainLoop', rounds=rounds, local_iters=1,
            aggregator=dict(type=aggregator),
            client_state=dict(type='DiskClientStateStore')),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=rounds,
                              by_epoch=True, begin=0, end=rounds)],
        log_level='WARNING',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0)))
    cfg.default_hooks.logger.interval = 10**6
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10,
                                        max_keep_ckpts=2)
    return cfg


def summarize(rows: List[dict], clients: int, rss_slack_mb: float,
              final_state_files: int) -> dict:
    n = len(rows)
    warm = rows[max(n // 10, 1):max(n // 5, 2)]  # after warm-up
    last = rows[-max(n // 10, 1):]

    def med(rs, key):
        return float(np.median([r[key] for r in rs]))

    out = dict(
        rounds=n,
        clients=clients,
        client_trainings=n * clients,
        seconds=rows[-1]['seconds'],
        ms_per_client=1000 * rows[-1]['seconds'] / (n * clients),
        rss_mb_warm=med(warm, 'rss_mb'),
        rss_mb_last=med(last, 'rss_mb'),
        rss_mb_max=max(r['rss_mb'] for r in rows),
        open_fds_warm=max(r['open_fds'] for r in warm),
        open_fds_last=max(r['open_fds'] for r in last),
        open_fds_max=max(r['open_fds'] for r in rows),
        state_files_max=max(r['state_files'] for r in rows),
        state_files_after_train=final_state_files,
        state_mb_max=max(r['state_mb'] for r in rows),
        work_dir_entries_max=max(r['work_dir_entries'] for r in rows),
    )
    out['rss_growth_mb'] = out['rss_mb_last'] - out['rss_mb_warm']
    out['checks'] = dict(
        rss_flat=out['rss_growth_mb'] <= rss_slack_mb,
        fds_flat=out['open_fds_last'] <= out['open_fds_warm'],
        states_bounded=out['state_files_max'] <= 2 * clients,
        one_version_at_end=final_state_files == clients)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=200)
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--aggregator', default='FedAvg')
    parser.add_argument('--rss-slack-mb', type=float, default=20.0)
    parser.add_argument('--json', help='write the per-round rows here')
    parser.add_argument('--keep', action='store_true',
                        help='keep the work dir')
    parser.add_argument('--hostile', action='store_true',
                        help='one hostile client in every round')
    args = parser.parse_args()
    torch.set_num_threads(1)
    work_dir = tempfile.mkdtemp(prefix='soak_')
    monitor = SoakMonitor()
    try:
        runner = Runner.from_cfg(
            soak_cfg(work_dir, args.rounds, args.clients, args.aggregator,
                     num_workers=2 if args.hostile else 0))
        runner.register_hook(monitor)
        hostile = HostileClientHook()
        if args.hostile:
            runner.register_hook(hostile)
        runner.train()
        final = runner.train_loop.global_state
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    summary = summarize(monitor.rows, args.clients, args.rss_slack_mb,
                        monitor.final_state_files)
    summary['aggregator'] = args.aggregator
    if args.hostile:
        expected = [args.clients - (HOSTILE_KINDS[r % 4] != 'huge_int')
                    for r in range(args.rounds)]
        summary['trained_per_round'] = hostile.trained
        summary['checks']['finite_global_model'] = all(
            bool(torch.isfinite(v).all()) for v in final.values()
            if v.is_floating_point())
        summary['checks']['counters_not_negative'] = all(
            int(v.min()) >= 0 for v in final.values()
            if not v.is_floating_point() and v.numel())
        summary['checks']['only_hostile_lost'] = hostile.trained == expected
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(summary=summary, rows=monitor.rows), f, indent=1)
    return 0 if all(summary['checks'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
