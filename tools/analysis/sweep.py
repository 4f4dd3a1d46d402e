"""Run a grid of training configs, evaluate each checkpoint, log one file.

    python tools/analysis/sweep.py \
        --config configs/study/simclr_r18w16_fmnist_dec.py \
        --grid partition=iid,dir1,dir0.1 model=simclr,simsiam \
        --seeds 0,1 --work-dir work_dirs/sweep_q1 --eval knn,linear

Every grid point (one value per axis, times every seed) is a training run
of the merged config, run one after another (``tools/train.py`` in a
subprocess by default, ``tools/dist_train.sh`` with ``--launcher pytorch
--gpus N``, or in this process with ``--runner inprocess``). Its final
checkpoint is then evaluated on frozen backbone features by
:func:`decssl_mm.evaluation.evaluate_checkpoint` by the evaluations named
in ``--eval``, by their ``EVALUATIONS`` names (default weighted kNN, k=200,
T=0.1, and the feature-based linear probe of
:mod:`decssl_mm.evaluation.linear_probe`; ``ncm``, nearest class mean, or
any other registered one; for classifiers also their own head), beside the same network untrained (``references``:
``untrained_init``, the model's own initialisation with the point's seed;
``untrained_default``, PyTorch's default initialisation), on the
config's evaluation loaders (``knn_train_dataloader``/``knn_val_dataloader``
or a ``KNNEvalHook``'s; ``--eval-loaders CONFIG`` takes them from another
file). ONE line is appended to the results file (JSON lines, default
``WORK_DIR/results.jsonl``) with: the grid values, the seed, the overrides,
the exact merged config (text), the metrics and their references, wall
times, rounds done and
communicated bytes (``checkpoint['federated']['comm_bytes_total']``).

Resumable: a point whose key (config, overrides, seed, evaluation settings)
already has an ``ok`` line in the results file is skipped; a point whose
training finished but whose evaluation did not is only evaluated; an
interrupted training resumes from its latest checkpoint. ``--dry-run``
prints the planned runs and their overrides without running anything.

Grid axes (``--grid AXIS=V1,V2,...``; values are parsed as Python literals
when possible, else kept as strings; commas inside brackets or quotes do
not split):

- ``a.b.c=...``: a dotted config key (list items by index:
  ``param_scheduler.0.T_max``). The value *replaces* the key (dicts are not
  merged). The parent of the key must exist in the config.
- key aliases: ``partition`` = ``train_dataloader.dataset.partition``,
  ``alpha`` = ``...partition.alpha``, ``partition_seed`` =
  ``...partition.seed`` (the partition draw, independent of ``--seeds``),
  ``num_clients`` = ``...partition.num_clients``, ``subset`` =
  ``train_dataloader.dataset.dataset.subset``, ``rounds``, ``local_epochs``,
  ``local_iters``, ``participation``, ``clients_per_round`` =
  ``train_cfg.<same>``.
- special partition values (for ``partition`` / any ``*.partition`` key):
  ``iid``, ``dir<alpha>`` (Dirichlet), ``skew<ratio>``, ``shards<n>``,
  ``patho<m>`` (Pathological); the client count and seed of the config's
  partition are kept. ``alpha=iid`` also switches to IID.
- ``local_epochs=all`` means ``--total-epochs`` local epochs in one round;
  with ``--total-epochs T``, every point gets ``rounds = T / local_epochs``
  (fixed total local epochs; ``T`` must be divisible).
- ``method=`` (or ``config=``): switches the whole config; a value is a
  name given with ``--variants NAME=CONFIG`` or a config path. ``--variants``
  alone (no ``method`` axis) makes a ``method`` axis over all variants.
- ``model=`` (or ``algo=``): switches to the sibling config of another
  algorithm: ``simclr_r18w16_fmnist_dec.py`` with ``model=simsiam`` is
  ``simsiam_r18w16_fmnist_dec.py`` in the same folder.
- zipped axes: ``KEY1+KEY2=A1:A2,B1:B2`` sets two keys together per value.

- study size knobs: a top-level ``study_<name>`` key (``study_width``,
  ``study_train_subset``, ``study_rounds``, ``study_local_epochs``, ...;
  configs/study/_base_/study_fmnist.py) is put in place (as
  ``STUDY_<NAME>``) while the config is loaded, so every key derived from it
  follows (e.g. ``study_width=32``: backbone, projector and head widths).
  ``STUDY_*`` variables set in the sweep's own environment are refused.

After the overrides, epoch-based parameter schedulers whose ``end`` /
``T_max`` equalled the config's schedule length (rounds, or rounds x local
epochs under ``train_cfg.schedule_unit='local_epoch'``) follow the new one
(``--no-sync-schedule`` keeps them).

Every record carries ``code_version`` (git commit, ``+dirty`` when tracked
files differ from it); the sweep prints a WARNING when one run
(``train_key``) of the results file has records of several versions.

The grid, planning, run and results logic lives in :mod:`decssl_mm.study`;
the evaluation in :mod:`decssl_mm.evaluation`.
"""
import argparse
import contextlib
import datetime
import os
import os.path as osp
import socket
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from decssl_mm.study import (PARTITION_KEY, SweepError,  # noqa: E402,F401
                             append_result, code_version, derived_fields,
                             eval_loaders, parse_eval_options,
                             sweep_evaluations,
                             load_results, make_record, mixed_code_versions,
                             parse_grid, plan, print_plan, rel, run_point,
                             summary_line, train_command)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(
        description='Train and evaluate a grid of configs; write one '
        'results file (JSON lines). Grid syntax: see below.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    p.add_argument('--config', help='base config (optional with --variants '
                   'or a method=... axis)')
    p.add_argument('--grid', nargs='+', action='extend', default=[],
                   metavar='AXIS=V1,V2',
                   help='grid axes: dotted key, alias (partition, alpha, '
                   'partition_seed, num_clients, subset, rounds, '
                   'local_epochs, local_iters, participation, '
                   'clients_per_round), study size knob (study_<name>), '
                   'method=/config= '
                   '(switch config), model=/algo= (sibling config of '
                   'another algorithm), or zipped K1+K2=A1:A2,B1:B2')
    p.add_argument('--variants', nargs='+', action='extend', default=[],
                   metavar='NAME=CONFIG',
                   help='named configs for the method axis (without a '
                   'method axis: one point per variant)')
    p.add_argument('--method-label', help='method name recorded when no '
                   'config-switching axis is given (default: config stem)')
    p.add_argument('--seeds', default='0', help='comma-separated seeds; '
                   'each sets every --seed-keys key (default: 0)')
    p.add_argument('--seed-keys', default='randomness.seed',
                   type=lambda s: [k for k in s.split(',') if k],
                   help='config keys set to the seed (comma-separated; '
                   'default: randomness.seed, which also seeds the '
                   'federated sampling and augmentation; add '
                   f'{PARTITION_KEY}.seed to redraw the split too)')
    p.add_argument('--cfg-options', nargs='+', action='extend',
                   default=[],
                   metavar='KEY=VALUE',
                   help='overrides applied to every point before the grid '
                   'values (aliases and special values allowed; a,b is a '
                   'list)')
    p.add_argument('--total-epochs', type=int, default=None,
                   help='fix rounds x local_epochs: rounds = TOTAL / '
                   'local_epochs for every point; local_epochs=all = TOTAL')
    p.add_argument('--no-sync-schedule', action='store_true',
                   help='do not adapt epoch-based schedulers to a changed '
                   'train_cfg.rounds')
    p.add_argument('--data-root', help='replace every data_root of the '
                   'configs (e.g. another copy of the dataset)')
    p.add_argument('--work-dir', required=True,
                   help='folder of the point work dirs (and the results)')
    p.add_argument('--results', help='results file (JSON lines); default '
                   'WORK_DIR/results.jsonl; several sweeps may share one')
    p.add_argument('--eval', default='knn,linear',
                   type=lambda s: [e for e in s.split(',') if e and
                                   e != 'none'],
                   help='evaluations by registered name (EVALUATIONS: knn, '
                   'linear, ncm, ...; comma-separated; <name>_bnre: after '
                   'BatchNorm re-estimation on the bank images, references '
                   'too) or none; classifiers always also report their own '
                   'head (cls_top1) unless none (default: knn,linear)')
    p.add_argument('--eval-options', nargs='+', action='extend',
                   default=[], metavar='NAME.KEY=VALUE',
                   help='settings of an evaluation, e.g. ncm.normalize=False '
                   '(--knn-* and --probe-* set those of knn and linear)')
    p.add_argument('--knn-k', type=int, default=200, help='kNN neighbours')
    p.add_argument('--knn-t', type=float, default=0.1,
                   help='kNN temperature')
    p.add_argument('--probe-epochs', type=int, default=100,
                   help='linear probe epochs (final epoch is reported)')
    p.add_argument('--probe-lr', type=float, default=0.5,
                   help='linear probe peak learning rate (cosine)')
    p.add_argument('--probe-batch-size', type=int, default=256,
                   help='linear probe minibatch (0 = full batch)')
    p.add_argument('--probe-wd', type=float, default=1e-4,
                   help='linear probe weight decay')
    p.add_argument('--eval-train-subset', type=int, default=None,
                   help='first N images of the evaluation train split '
                   '(kNN bank, probe training set); default: the config')
    p.add_argument('--eval-test-subset', type=int, default=None,
                   help='first N test images; default: the config')
    p.add_argument('--eval-workers', type=int, default=None,
                   help='dataloader workers of the evaluation')
    p.add_argument('--eval-loaders', metavar='CONFIG',
                   help='take the evaluation loaders (knn_train_dataloader, '
                   'knn_val_dataloader) from this config instead of each '
                   "point's config, e.g. a file of configs/benchmarks/"
                   '_base_/datasets/')
    p.add_argument('--no-references', action='store_true',
                   help='skip the untrained references (the records\' '
                   'references: untrained_init, untrained_default)')
    p.add_argument('--device', default='auto',
                   help='evaluation device: auto, cpu, cuda, cuda:1, ...')
    p.add_argument('--runner', choices=['subprocess', 'inprocess'],
                   default='subprocess',
                   help='train each point with tools/train.py in a '
                   'subprocess (default) or in this process')
    p.add_argument('--launcher', choices=['none', 'pytorch'],
                   default='none', help='pytorch: tools/dist_train.sh with '
                   '--gpus processes')
    p.add_argument('--gpus', type=int, default=1,
                   help='processes per run with --launcher pytorch')
    p.add_argument('--timeout', type=float, default=None,
                   help='seconds after which a training subprocess is '
                   'killed (the point fails)')
    p.add_argument('--keep-checkpoints', choices=['all', 'last', 'none'],
                   default='last', help='after evaluation keep every '
                   'checkpoint, only the evaluated one (default), or none; '
                   'client-state files are removed unless all')
    p.add_argument('--rerun-changed', action='store_true',
                   help='rerun finished points whose merged config text '
                   'changed since they ran (default: warn and skip)')
    p.add_argument('--stop-on-error', action='store_true',
                   help='stop at the first failing point (default: record '
                   'the failure and go on)')
    p.add_argument('--no-train', action='store_true',
                   help='evaluate the freshly initialised model of every '
                   'point (seeded by the point\'s seed) instead of training: '
                   'the random-initialisation floor')
    p.add_argument('--dry-run', action='store_true',
                   help='print the planned runs and overrides; run nothing')
    p.add_argument('--deadline', type=parse_deadline, default=None,
                   help='wall-clock time (HH:MM today, or an ISO date-time) '
                   'by which the sweep must be done: a point is started '
                   'only if --run-minutes remain before it; the others are '
                   'left for a later call (the sweep resumes)')
    p.add_argument('--shared', action='store_true',
                   help='cooperate with other sweeps of the same plan and '
                   'results file (e.g. two one-thread sweeps side by side): '
                   'before each point the results file is read again and '
                   'the point is claimed (an exclusive claim file beside its '
                   'work dir); a point finished or claimed by another live '
                   'sweep is skipped, a claim left by a dead process is '
                   'taken over')
    p.add_argument('--run-minutes', type=float, default=30.0,
                   help='minutes one point may take, for --deadline '
                   '(default 30)')
    args = p.parse_args(argv)
    try:
        args.eval_options = parse_eval_options(args.eval_options)
        sweep_evaluations(args)
    except (SweepError, ValueError) as e:
        p.error(str(e))
    if args.launcher == 'pytorch' and args.runner == 'inprocess':
        p.error('--launcher pytorch needs --runner subprocess')
    if args.gpus < 1:
        p.error('--gpus must be >= 1')
    if args.total_epochs is not None and args.total_epochs < 1:
        p.error('--total-epochs must be >= 1')
    if args.eval_loaders:
        found = [c for c in (args.eval_loaders, osp.join(ROOT,
                                                         args.eval_loaders))
                 if osp.isfile(c)]
        if not found:
            p.error(f'--eval-loaders: config file {args.eval_loaders!r} not '
                    'found')
        args.eval_loaders = osp.abspath(found[0])
    args.work_dir = osp.abspath(args.work_dir)
    args.results = osp.abspath(args.results or osp.join(args.work_dir,
                                                        'results.jsonl'))
    return args


def parse_deadline(text: str) -> datetime.datetime:
    """``HH:MM`` (today, local time) or an ISO date-time."""
    try:
        if len(text) <= 5 and ':' in text:
            hour, minute = (int(v) for v in text.split(':'))
            return datetime.datetime.now().replace(
                hour=hour, minute=minute, second=0, microsecond=0)
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--deadline: expected HH:MM or an ISO date-time, got {text!r}')


def starts_in_time(deadline: Optional[datetime.datetime],
                   run_minutes: float) -> bool:
    """Whether a point of ``run_minutes`` ends before ``deadline``."""
    if deadline is None:
        return True
    left = (deadline - datetime.datetime.now()).total_seconds() / 60
    return left >= run_minutes


def _finished_elsewhere(results: str, point) -> bool:
    rec = load_results(results).get(point.key)
    return bool(rec) and rec.get('status') == 'ok' and \
        rec.get('config_sha1') == point.config_sha1


def claim_point(work_dir: str) -> Optional[str]:
    """Claim a point for this process: create ``<work_dir>.claim``
    exclusively (holding ``host pid``). Returns its path, or None when a
    live process on this host holds it; a claim of a dead process (or of
    another host: not checkable, so taken over with a warning) is
    replaced."""
    path = work_dir.rstrip('/') + '.claim'
    os.makedirs(osp.dirname(path), exist_ok=True)
    mine = f'{socket.gethostname()} {os.getpid()}\n'
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    host, pid = f.read().split()
            except (OSError, ValueError):
                host, pid = '', '0'
            if host == socket.gethostname() and _alive(int(pid)):
                return None
            print(f'warning: taking over the stale claim {path} '
                  f'({host} {pid})', file=sys.stderr, flush=True)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(mine)
        return path
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def release_claim(path: str) -> None:
    """Remove this process's claim file."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def warn_mixed_versions(path: str) -> None:
    """Print a WARNING (stderr) for every run of the results file whose
    records come from several code versions."""
    for line in mixed_code_versions(path):
        print(line, file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the sweep; return the records written by this call."""
    args = parse_args(argv)
    code_version()  # fixed now: the code this sweep and its runs start with
    try:
        points = plan(args)
    except SweepError as e:
        raise SystemExit(f'sweep: error: {e}')
    results = load_results(args.results)
    warn_mixed_versions(args.results)
    done = {}
    for p in points:
        rec = results.get(p.key)
        if rec is None or rec.get('status') != 'ok':
            continue
        changed = rec.get('config_sha1') != p.config_sha1
        if changed and args.rerun_changed:
            p.retrain = True
            continue
        if changed:
            print(f'warning: {p.name}: the merged config changed since it '
                  'ran; skipped (use --rerun-changed to rerun)',
                  file=sys.stderr)
        done[p.key] = rec
    if args.dry_run:
        print_plan(points, done, args)
        return []
    written, failed = [], 0
    n = len(points)
    for p in points:
        grid = ' '.join(f'{k}={v}' for k, v in p.grid.items())
        head = f'[{p.index + 1}/{n}] {p.method} {grid} seed={p.seed}'
        if p.key in done:
            print(f'{head}: finished earlier, skipped', flush=True)
            continue
        if args.shared and _finished_elsewhere(args.results, p):
            print(f'{head}: finished by another sweep, skipped', flush=True)
            continue
        if not starts_in_time(args.deadline, args.run_minutes):
            print(f'{head}: not started: fewer than {args.run_minutes:g} '
                  f'minutes left before the deadline '
                  f'{args.deadline:%Y-%m-%d %H:%M}', flush=True)
            continue
        claim = None
        if args.shared:
            claim = claim_point(p.work_dir)
            if claim is None:
                print(f'{head}: running in another sweep, skipped',
                      flush=True)
                continue
        print(f'{head}: running in {rel(p.work_dir)}', flush=True)
        try:
            rec = run_point(p, args)
        except Exception as e:  # noqa: B902 - record and go on
            if args.stop_on_error or isinstance(e, SweepError):
                raise
            failed += 1
            rec = make_record(p, 'failed', error=f'{type(e).__name__}: {e}')
            print(f'{head}: FAILED: {type(e).__name__}: {e}', flush=True)
        else:
            print(f'{head}: {summary_line(rec)} (train '
                  f'{rec["train_time_s"]:.0f} s, eval '
                  f'{rec["eval_time_s"]:.0f} s)', flush=True)
        append_result(args.results, rec)
        written.append(rec)
        if claim is not None:
            release_claim(claim)
    print(f'Sweep done: {len(written) - failed} ok, {failed} failed, '
          f'{len(done)} skipped; results in {rel(args.results)}')
    if written:
        warn_mixed_versions(args.results)
    if failed:
        raise SystemExit(1)
    return written


if __name__ == '__main__':
    main()
