"""The sweep's results file: one JSON line per evaluated point."""
import datetime
import fcntl
import functools
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, Iterator, List, Optional, Tuple

from .grid import ROOT, RESULTS_FORMAT, RESULTS_VERSION, rel, to_jsonable
from .plan import Point, derived_fields


def iter_records(path: str) -> Iterator[Tuple[int, dict]]:
    """``(line number, record)`` of every readable JSON object line.

    A damaged line (e.g. a run killed while writing) is skipped with a
    warning on stderr.
    """
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                print(f'warning: {path}:{n}: unreadable line skipped',
                      file=sys.stderr)
                continue
            if isinstance(rec, dict):
                yield n, rec


def load_results(path: str) -> Dict[str, dict]:
    """Records of a results file by key (later lines win).

    A damaged line (e.g. a run killed while writing) is skipped with a
    warning.
    """
    if not osp.isfile(path):
        return {}
    return {rec['key']: rec for _, rec in iter_records(path)
            if rec.get('key')}


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', '-C', ROOT, *args], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The version of the code that writes a record.

    ``<git commit>`` of the repository, ``+dirty`` when tracked files differ
    from it; without git, ``decssl_mm <package version>``. Computed once per
    process (the code a sweep runs is the code it started with).
    """
    commit = _git('rev-parse', 'HEAD')
    if commit:
        dirty = _git('status', '--porcelain', '--untracked-files=no')
        return commit + ('+dirty' if dirty else '')
    from decssl_mm.version import __version__
    return f'decssl_mm {__version__}'


def compute_threads() -> int:
    """Threads of the CPU kernels of a run: ``OMP_NUM_THREADS`` when set
    (training subprocesses inherit it), else torch's own count.

    The float sums of CPU kernels are grouped by thread, so the same config
    and seed give bitwise-equal results only at the same thread count
    (docs/results.md, "One config, two results").
    """
    value = os.environ.get('OMP_NUM_THREADS', '')
    if value.isdigit() and int(value) > 0:
        return int(value)
    import torch
    return torch.get_num_threads()


def _run_version(rec: dict) -> str:
    """A record's code version, with its thread count when recorded."""
    version = rec.get('code_version') or 'unknown'
    threads = rec.get('threads')
    return version if threads is None else f'{version} @ {threads} threads'


def mixed_code_versions(path: str) -> List[str]:
    """Warnings for runs whose records in ``path`` come from several code
    versions.

    Every ``ok`` record of one ``train_key`` (the same config, overrides and
    seed) should come from the same code; when they do not (e.g. the code
    changed between a run and its re-evaluation, or between two sweeps
    sharing the file, or the thread count differed) their numbers may not
    be comparable. Records written before versions were recorded count as
    ``unknown``.

    Returns:
        list[str]: One ``WARNING: ...`` line per such train_key.
    """
    if not osp.isfile(path):
        return []
    seen: Dict[str, dict] = {}
    for _, rec in iter_records(path):
        key = rec.get('train_key')
        if not key or rec.get('status') != 'ok':
            continue
        entry = seen.setdefault(key, dict(versions=[], name=rec.get('name')))
        version = _run_version(rec)
        if version not in entry['versions']:
            entry['versions'].append(version)
    return [
        f'WARNING: {rel(path)}: train_key {key} ({e["name"]}) has records '
        f'from {len(e["versions"])} code versions ({", ".join(e["versions"])})'
        '; its numbers may not be comparable (rerun it with one version)'
        for key, e in seen.items() if len(e['versions']) > 1
    ]


def append_result(path: str, record: dict) -> None:
    """Append one JSON line under an exclusive lock, then fsync."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    line = json.dumps(to_jsonable(record), sort_keys=True) + '\n'
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def make_record(point: Point, status: str, **extra) -> dict:
    """The results line of a point.

    Args:
        point (Point): The point.
        status (str): ``'ok'`` or ``'failed'``.
        **extra: More fields (metrics, eval info, timings, error, ...).

    Returns:
        dict: The record (grid values, seed, overrides, derived fields,
        merged config text and hash, code version (:func:`code_version`),
        thread count (:func:`compute_threads`), time of writing,
        ``extra``).
    """
    fields = derived_fields(point.cfg)
    fields.update({a.key: a.value for a in point.overrides})
    fields.update(method=point.method, seed=point.seed)
    if point.no_train:
        fields.update(no_train=True, rounds=0)
    text = point.cfg.pretty_text
    rec = dict(
        format=RESULTS_FORMAT, version=RESULTS_VERSION, key=point.key,
        train_key=point.train_key, name=point.name, status=status,
        method=point.method, config=rel(point.config), grid=point.grid,
        seed=point.seed,
        overrides={a.key: a.value for a in point.overrides},
        fields=fields, work_dir=point.work_dir, config_text=text,
        config_sha1=point.config_sha1, code_version=code_version(),
        threads=compute_threads(),
        finished_at=datetime.datetime.now().isoformat(timespec='seconds'))
    rec.update(extra)
    return rec


def top1_keys(record: dict) -> list:
    """``<name>_top1`` of every evaluation the record ran without BatchNorm
    re-estimation (``eval.settings.eval``; kNN and linear probe in records
    without it), then ``cls_top1``."""
    settings = (record.get('eval') or {}).get('settings') or {}
    names = settings.get('eval', ('knn', 'linear'))
    return [f'{n}_top1' for n in names if not n.endswith('_bnre')] + \
        ['cls_top1']


def summary_line(record: dict) -> str:
    """``knn_top1 T (untrained A / B), ...``: the top-1 figures of a
    record's evaluations beside their untrained references (model init /
    PyTorch default init)."""
    metrics = record.get('metrics') or {}
    refs = record.get('references') or {}
    parts = []
    for key in top1_keys(record):
        value = metrics.get(key)
        if not isinstance(value, float):
            continue
        text = f'{key} {value:.2f}'
        init, default = ((refs.get(n) or {}).get(key)
                         for n in ('untrained_init', 'untrained_default'))
        if isinstance(init, float) and isinstance(default, float):
            text += f' (untrained {init:.2f} / {default:.2f})'
        parts.append(text)
    return ', '.join(parts)
