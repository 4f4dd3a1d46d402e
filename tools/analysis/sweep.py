"""Run a grid of training configs, evaluate each checkpoint, log one file.

    python tools/analysis/sweep.py \
        --config configs/study/simclr_r18w16_fmnist_dec.py \
        --grid partition=iid,dir1,dir0.1 model=simclr,simsiam \
        --seeds 0,1 --work-dir work_dirs/sweep_q1 --eval knn,linear

Every grid point (one value per axis, times every seed) is a training run
of the merged config, run one after another (``tools/train.py`` in a
subprocess by default, ``tools/dist_train.sh`` with ``--launcher pytorch
--gpus N``, or in this process with ``--runner inprocess``). Its final
checkpoint is then evaluated on frozen backbone features (weighted kNN,
k=200, T=0.1, and the feature-based linear probe of
:mod:`decssl_mm.evaluation.linear_probe`; for classifiers also their own
head), and ONE line is appended to the results file (JSON lines, default
``WORK_DIR/results.jsonl``) with: the grid values, the seed, the overrides,
the exact merged config (text), the metrics, wall times, rounds done and
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
  ``alpha`` = ``...partition.alpha``, ``num_clients`` =
  ``...partition.num_clients``, ``subset`` =
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

After the overrides, epoch-based parameter schedulers whose ``end`` /
``T_max`` equalled the config's round count follow the new
``train_cfg.rounds`` (``--no-sync-schedule`` keeps them).
"""
import argparse
import ast
import contextlib
import copy
import datetime
import fcntl
import hashlib
import itertools
import json
import math
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

RESULTS_FORMAT = 'decssl_mm.sweep'
RESULTS_VERSION = 1
CONFIG_AXES = ('method', 'config')
SIBLING_AXES = ('model', 'algo')
PARTITION_KEY = 'train_dataloader.dataset.partition'
KEY_ALIASES = {
    'partition': PARTITION_KEY,
    'alpha': PARTITION_KEY + '.alpha',
    'num_clients': PARTITION_KEY + '.num_clients',
    'subset': 'train_dataloader.dataset.dataset.subset',
    'rounds': 'train_cfg.rounds',
    'local_epochs': 'train_cfg.local_epochs',
    'local_iters': 'train_cfg.local_iters',
    'participation': 'train_cfg.participation',
    'clients_per_round': 'train_cfg.clients_per_round',
}
EVALS = ('knn', 'linear')
_PARTITION_SPECS = (
    (re.compile(r'^iid$'), 'IID', None),
    (re.compile(r'^dir(?:ichlet)?([0-9.eE+-]+)$'), 'Dirichlet', 'alpha'),
    (re.compile(r'^skew([0-9.eE+-]+)$'), 'Skew', 'ratio'),
    (re.compile(r'^shards(\d+)$'), 'Shards', 'shards_per_client'),
    (re.compile(r'^patho(?:logical)?(\d+)$'), 'Pathological',
     'classes_per_client'),
)
_DIRICHLET_KEEP = ('min_size', 'balance', 'max_tries')
_MISSING = object()


class SweepError(ValueError):
    """A user error in the sweep's arguments (message names the argument)."""


# ----------------------------------------------------------------- parsing
def split_top_level(text: str, sep: str) -> List[str]:
    """Split ``text`` at ``sep`` outside brackets and quotes.

    Args:
        text (str): E.g. ``"1,[2,3],'a,b'"``.
        sep (str): One separator character.

    Returns:
        list[str]: The pieces (``['1', '[2,3]', "'a,b'"]``).
    """
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in '\'"':
            quote = ch
        elif ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(''.join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append(''.join(cur))
    return parts


def parse_value(text: str) -> Any:
    """A grid / option value: a Python literal when it parses, else text.

    ``None``/``none``/``null`` give None; ``true``/``false`` booleans.
    """
    text = text.strip()
    low = text.lower()
    if low in ('none', 'null'):
        return None
    if low in ('true', 'false'):
        return low == 'true'
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@dataclass
class Axis:
    """One grid axis: config keys (one, or several zipped) and values."""
    name: str
    keys: List[str]
    values: List[List[Any]]  # per value: one entry per key
    labels: List[str]

    @property
    def kind(self) -> str:
        """``'config'``, ``'sibling'`` or ``'keys'``."""
        if self.name in CONFIG_AXES:
            return 'config'
        if self.name in SIBLING_AXES:
            return 'sibling'
        return 'keys'


def parse_grid(specs: Sequence[str]) -> List[Axis]:
    """Parse ``--grid`` specs into axes.

    Args:
        specs (Sequence[str]): ``AXIS=V1,V2`` or ``K1+K2=A1:A2,B1:B2``.

    Raises:
        SweepError: On a malformed spec or a repeated axis, quoting it.
    """
    axes: List[Axis] = []
    for spec in specs or ():
        if '=' not in spec:
            raise SweepError(f'--grid {spec!r}: expected AXIS=V1,V2,...')
        name, raw = spec.split('=', 1)
        name = name.strip()
        keys = [k.strip() for k in name.split('+')]
        if not all(keys) or not raw.strip():
            raise SweepError(f'--grid {spec!r}: empty key or values')
        if any(a.name == name for a in axes):
            raise SweepError(f'--grid {spec!r}: axis {name!r} given twice')
        if len(keys) > 1 and any(k in CONFIG_AXES + SIBLING_AXES
                                 for k in keys):
            raise SweepError(f'--grid {spec!r}: {CONFIG_AXES + SIBLING_AXES}'
                             ' cannot be zipped with other keys')
        values, labels = [], []
        for item in split_top_level(raw, ','):
            item = item.strip()
            if not item:
                raise SweepError(f'--grid {spec!r}: empty value')
            parts = split_top_level(item, ':') if len(keys) > 1 else [item]
            if len(parts) != len(keys):
                raise SweepError(
                    f'--grid {spec!r}: value {item!r} has {len(parts)} '
                    f"':'-separated parts for {len(keys)} keys")
            if name in CONFIG_AXES + SIBLING_AXES:
                values.append([item])
            else:
                values.append([parse_value(p) for p in parts])
            labels.append(item)
        if len(set(labels)) != len(labels):
            raise SweepError(f'--grid {spec!r}: repeated value')
        axes.append(Axis(name, keys, values, labels))
    return axes


def parse_variants(specs: Sequence[str]) -> Dict[str, str]:
    """``--variants NAME=CONFIG ...`` -> ordered ``{name: path}``."""
    out: Dict[str, str] = {}
    for spec in specs or ():
        if '=' not in spec:
            raise SweepError(f'--variants {spec!r}: expected NAME=CONFIG')
        name, path = (s.strip() for s in spec.split('=', 1))
        if not name or name in out:
            raise SweepError(f'--variants {spec!r}: empty or repeated name')
        out[name] = _existing_config(path, f'--variants {spec!r}')
    return out


def parse_seeds(text: str) -> List[int]:
    """``'0,1,2'`` -> ``[0, 1, 2]``."""
    try:
        seeds = [int(s) for s in text.split(',') if s.strip()]
    except ValueError:
        raise SweepError(f'--seeds {text!r}: expected integers like 0,1,2')
    if not seeds or len(set(seeds)) != len(seeds):
        raise SweepError(f'--seeds {text!r}: empty or repeated seed')
    return seeds


def parse_cfg_options(items: Sequence[str]) -> List[Tuple[str, Any]]:
    """``--cfg-options K=V ...``: as mmengine (``a,b`` is a list)."""
    out = []
    for item in items or ():
        if '=' not in item:
            raise SweepError(f'--cfg-options {item!r}: expected KEY=VALUE')
        key, raw = item.split('=', 1)
        parts = split_top_level(raw, ',')
        value = (parse_value(raw) if len(parts) == 1 else
                 [parse_value(p) for p in parts])
        out.append((key.strip(), value))
    return out


def _existing_config(path: str, what: str) -> str:
    for cand in (path, osp.join(ROOT, path)):
        if osp.isfile(cand):
            return osp.normpath(osp.abspath(cand))
    raise SweepError(f'{what}: config file {path!r} not found')


def rel(path: str) -> str:
    """``path`` relative to the repository root when inside it."""
    path = osp.abspath(path)
    return osp.relpath(path, ROOT) if path.startswith(ROOT + os.sep) \
        else path


# ----------------------------------------------------------- config access
def _plain(cfg: Any) -> Any:
    """The ConfigDict inside an mmengine ``Config`` (else ``cfg``)."""
    return cfg._cfg_dict if hasattr(cfg, '_cfg_dict') else cfg


def _get(cfg: Any, key: str, default: Any = _MISSING) -> Any:
    cur = _plain(cfg)
    for part in key.split('.'):
        if isinstance(cur, (list, tuple)) and part.lstrip('-').isdigit():
            i = int(part)
            if -len(cur) <= i < len(cur):
                cur = cur[i]
                continue
            return default
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
            continue
        return default
    return cur


def _set(cfg: Any, key: str, value: Any, origin: str) -> bool:
    """Set ``key`` (replace); return whether it existed before.

    Raises:
        SweepError: If the parent of ``key`` is missing, naming ``origin``.
    """
    from mmengine.config import ConfigDict
    parts = key.split('.')
    parent = _get(cfg, '.'.join(parts[:-1])) if len(parts) > 1 \
        else _plain(cfg)
    if parent is _MISSING or not isinstance(parent, (dict, list)):
        raise SweepError(
            f'{origin}: key {key!r}: {".".join(parts[:-1])!r} does not exist '
            'in the config (or is not a dict/list)')
    if isinstance(value, dict) and not isinstance(value, ConfigDict):
        value = ConfigDict(copy.deepcopy(value))
    leaf = parts[-1]
    if isinstance(parent, list):
        if not leaf.lstrip('-').isdigit() or not \
                -len(parent) <= int(leaf) < len(parent):
            raise SweepError(f'{origin}: key {key!r}: index {leaf!r} out of '
                             f'range (list of {len(parent)})')
        parent[int(leaf)] = value
        return True
    existed = leaf in parent
    parent[leaf] = value
    return existed


def partition_from_spec(spec: str, current: Optional[dict],
                        origin: str) -> dict:
    """A partition dict from ``iid`` / ``dir0.1`` / ``skew0.5`` / ...

    The client count and seed of ``current`` (and the ``min_size``/
    ``balance``/``max_tries`` of a Dirichlet ``current``) are kept.

    Raises:
        SweepError: On an unknown spec, listing the accepted forms.
    """
    current = dict(current or {})
    for pattern, typ, param in _PARTITION_SPECS:
        m = pattern.match(str(spec).strip().lower())
        if not m:
            continue
        out = {'type': typ}
        for k in ('num_clients', 'seed'):
            if k in current:
                out[k] = current[k]
        if typ == 'Dirichlet' and current.get('type') == 'Dirichlet':
            out.update({k: current[k] for k in _DIRICHLET_KEEP
                        if k in current})
        if param is not None:
            try:
                val = ast.literal_eval(m.group(1))
            except (ValueError, SyntaxError):
                break
            out[param] = val
        return out
    raise SweepError(f'{origin}: partition value {spec!r} is not one of iid, '
                     'dir<alpha>, skew<ratio>, shards<n>, patho<m> (or a '
                     'dict)')


@dataclass
class Assignment:
    """One resolved override ``key = value`` and where it came from."""
    key: str
    value: Any
    origin: str


def resolve_assignment(cfg: Any, key: str, value: Any,
                       origin: str) -> List[Assignment]:
    """Expand aliases and special values into plain key assignments.

    Args:
        cfg (Config): The config the assignment will apply to (read only:
            the current partition is looked up in it).
        key (str): Key or alias.
        value: The parsed value.
        origin (str): The argument it came from, for messages.

    Returns:
        list[Assignment]: Plain assignments in order.
    """
    key = KEY_ALIASES.get(key, key)
    if key in CONFIG_AXES + SIBLING_AXES:
        raise SweepError(f'{origin}: {key!r} switches configs and is only '
                         'valid as a --grid axis')
    if key == PARTITION_KEY or key.endswith('.partition'):
        if isinstance(value, str):
            value = partition_from_spec(value, _get(cfg, key, None), origin)
        return [Assignment(key, value, origin)]
    if key.endswith('partition.alpha') and value == 'iid':
        part_key = key[:-len('.alpha')]
        return [Assignment(part_key,
                           partition_from_spec('iid', _get(cfg, part_key,
                                                           None), origin),
                           origin)]
    out = [Assignment(key, value, origin)]
    if key.endswith('train_cfg.local_epochs') and \
            _get(cfg, 'train_cfg.local_iters', None) is not None:
        out.append(Assignment(key[:-len('local_epochs')] + 'local_iters',
                              None, origin))
    if key.endswith('train_cfg.local_iters') and value is not None and \
            _get(cfg, 'train_cfg.local_epochs', None) is not None:
        out.append(Assignment(key[:-len('local_iters')] + 'local_epochs',
                              None, origin))
    return out


def apply_assignments(cfg: Any, items: Sequence[Tuple[str, Any, str]]
                      ) -> Tuple[List[Assignment], List[str]]:
    """Resolve and apply ``(key, value, origin)`` items to ``cfg`` in order.

    Returns:
        tuple: The plain assignments applied, and the keys that were new
        (absent from the config before).
    """
    applied, new = [], []
    for key, value, origin in items:
        for a in resolve_assignment(cfg, key, value, origin):
            if not _set(cfg, a.key, a.value, a.origin):
                new.append(a.key)
            applied.append(a)
    return applied, new


def apply_total_epochs(cfg: Any, total: int, origin: str
                       ) -> List[Assignment]:
    """Fix rounds x local epochs = ``total``; ``local_epochs='all'``."""
    tcfg = cfg.get('train_cfg') or {}
    if 'rounds' not in tcfg:
        raise SweepError(f'{origin}: --total-epochs needs a federated '
                         'train_cfg with rounds')
    le = tcfg.get('local_epochs')
    out = []
    if le == 'all':
        le = total
        out.append(Assignment('train_cfg.local_epochs', total, origin))
    if not isinstance(le, int) or isinstance(le, bool) or le < 1:
        raise SweepError(f'{origin}: --total-epochs needs integer '
                         f'train_cfg.local_epochs, got {le!r}')
    if total % le:
        raise SweepError(f'{origin}: --total-epochs {total} is not divisible'
                         f' by train_cfg.local_epochs={le}')
    out.append(Assignment('train_cfg.rounds', total // le, origin))
    for a in out:
        _set(cfg, a.key, a.value, origin)
    return out


def sync_schedule(cfg: Any, old_rounds: Any) -> List[Assignment]:
    """Make epoch-based schedulers tied to the old round count follow it."""
    rounds = _get(cfg, 'train_cfg.rounds', None)
    if rounds is None or old_rounds is None or rounds == old_rounds:
        return []
    out = []
    scheds = cfg.get('param_scheduler')
    items = scheds if isinstance(scheds, list) else \
        [scheds] if isinstance(scheds, dict) else []
    prefix = 'param_scheduler' + ('.{}' if isinstance(scheds, list) else '')
    for i, s in enumerate(items):
        if not isinstance(s, dict) or not s.get('by_epoch', True):
            continue
        for k in ('end', 'T_max'):
            if s.get(k) == old_rounds:
                s[k] = rounds
                out.append(Assignment(f'{prefix.format(i)}.{k}', rounds,
                                      'sync with train_cfg.rounds'))
    if cfg.get('rounds') == old_rounds:
        cfg['rounds'] = rounds
        out.append(Assignment('rounds', rounds, 'sync with train_cfg.rounds'))
    return out


def set_data_root(cfg: Any, root: str) -> List[Assignment]:
    """Point every ``data_root`` of the config (any depth) at ``root``."""
    out = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k in list(node):
                sub = f'{path}.{k}' if path else k
                if k in ('data_root', 'study_data_root') and \
                        isinstance(node[k], str):
                    node[k] = root
                    out.append(Assignment(sub, root, '--data-root'))
                else:
                    walk(node[k], sub)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f'{path}.{i}')

    walk(_plain(cfg), '')
    return out


def check_partition(cfg: Any, origin: str) -> None:
    """Build the partitioner of the merged config to validate its args."""
    part = _get(cfg, PARTITION_KEY, None)
    if not isinstance(part, dict):
        return
    import decssl_mm  # noqa: F401  (registers the partitioners)
    from decssl_mm.partition import build_partitioner
    try:
        build_partitioner(part.to_dict() if hasattr(part, 'to_dict')
                          else dict(part))
    except (TypeError, ValueError) as e:
        raise SweepError(f'{origin}: {PARTITION_KEY}={dict(part)} is '
                         f'invalid: {e}')


# --------------------------------------------------------------- planning
@dataclass
class Point:
    """One run of the sweep."""
    index: int
    seed: int
    grid: Dict[str, str]
    method: str
    config: str
    overrides: List[Assignment] = field(default_factory=list)
    new_keys: List[str] = field(default_factory=list)
    train_key: str = ''
    key: str = ''
    name: str = ''
    work_dir: str = ''
    cfg: Any = None
    config_sha1: str = ''
    retrain: bool = False
    no_train: bool = False


def _jsonable(value: Any) -> Any:
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _hash(obj: Any, n: int = 12) -> str:
    text = json.dumps(_jsonable(obj), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def _safe(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9.=+-]+', '-', text).strip('-')


def sibling_config(config: str, algo: str, origin: str) -> str:
    """The config of algorithm ``algo`` next to ``config``.

    ``.../simclr_r18w16_fmnist_dec.py`` + ``simsiam`` ->
    ``.../simsiam_r18w16_fmnist_dec.py``.
    """
    folder, name = osp.split(config)
    stem = osp.splitext(name)[0]
    if '_' not in stem:
        raise SweepError(f'{origin}: cannot derive a sibling of {rel(config)}'
                         ' (no <algorithm>_ prefix in its file name)')
    path = osp.join(folder, f'{algo}{stem[stem.index("_"):]}.py')
    if not osp.isfile(path):
        raise SweepError(f'{origin}: {algo!r} has no sibling config: '
                         f'{rel(path)} not found')
    return path


def _point_config(args: argparse.Namespace, variants: Dict[str, str],
                  combo: Sequence[Tuple[Axis, int]]) -> Tuple[str, str]:
    """The config path and method label of one grid combination."""
    config = args.config
    labels = []
    for axis, i in combo:
        if axis.kind != 'config':
            continue
        value = axis.labels[i]
        if value in variants:
            config = variants[value]
        else:
            config = _existing_config(
                value, f'--grid {axis.name}: {value!r} is neither a '
                f'--variants name ({", ".join(variants) or "none given"}) '
                'nor a config file;')
        labels.append(value)
    for axis, i in combo:
        if axis.kind == 'sibling':
            if config is None:
                raise SweepError(f'--grid {axis.name}: needs --config or a '
                                 'method axis')
            config = sibling_config(config, axis.labels[i],
                                    f'--grid {axis.name}={axis.labels[i]}')
            labels.append(axis.labels[i])
    if config is None:
        raise SweepError('give --config, --variants or a method=... axis')
    method = '/'.join(labels) or args.method_label or \
        osp.splitext(osp.basename(config))[0]
    return config, method


def eval_settings(args: argparse.Namespace) -> dict:
    """The evaluation settings that enter a point's key."""
    out = {'eval': list(args.eval)}
    if 'knn' in args.eval:
        out['knn'] = dict(k=args.knn_k, temperature=args.knn_t)
    if 'linear' in args.eval:
        out['linear'] = dict(epochs=args.probe_epochs, lr=args.probe_lr,
                             batch_size=args.probe_batch_size,
                             weight_decay=args.probe_wd)
    out['train_subset'] = args.eval_train_subset
    out['test_subset'] = args.eval_test_subset
    return out


def build_point(args: argparse.Namespace, variants: Dict[str, str],
                combo: Sequence[Tuple[Axis, int]], seed: int,
                common: List[Tuple[str, Any]], index: int) -> Point:
    """Load and merge the config of one point; compute its keys."""
    from mmengine.config import Config
    config, method = _point_config(args, variants, combo)
    cfg = Config.fromfile(config)
    old_rounds = _get(cfg, 'train_cfg.rounds', None)
    items = [(k, v, '--cfg-options') for k, v in common]
    for axis, i in combo:
        if axis.kind == 'keys':
            for k, v in zip(axis.keys, axis.values[i]):
                items.append((k, v, f'--grid {axis.name}={axis.labels[i]}'))
    items += [(k, seed, '--seeds') for k in args.seed_keys]
    overrides: List[Assignment] = []
    if args.data_root:
        overrides += set_data_root(cfg, args.data_root)
    applied, new = apply_assignments(cfg, items)
    overrides += applied
    if args.total_epochs:
        overrides += apply_total_epochs(cfg, args.total_epochs,
                                        f'point {index + 1} ({method})')
    elif _get(cfg, 'train_cfg.local_epochs', None) == 'all':
        raise SweepError('--grid local_epochs=all needs --total-epochs')
    if not args.no_sync_schedule:
        overrides += sync_schedule(cfg, old_rounds)
    check_partition(cfg, f'point {index + 1} ({method}, {rel(config)})')
    grid = {axis.name: axis.labels[i] for axis, i in combo}
    body = dict(config=rel(config),
                overrides=[(a.key, a.value) for a in overrides], seed=seed)
    if args.no_train:
        body['no_train'] = True
    train_key = _hash(body)
    # the label is part of the key: one config run under two names (e.g. in
    # two sweeps sharing a results file) gives two records
    key = _hash(dict(train=train_key, method=method,
                     eval=eval_settings(args)))
    name = '_'.join(f'{_safe(a)}-{_safe(v)}' for a, v in grid.items()
                    if a not in CONFIG_AXES + SIBLING_AXES)
    name = '_'.join(x for x in (_safe(method), name, f'seed{seed}') if x)
    name = f'{name[:100]}-{train_key[:8]}'
    if args.no_train:
        name = 'init_' + name
    point = Point(index, seed, grid, method, config, overrides, new,
                  train_key, key, name, osp.join(args.work_dir, name), cfg,
                  hashlib.sha1(cfg.pretty_text.encode()).hexdigest())
    point.no_train = bool(args.no_train)
    cfg.work_dir = point.work_dir
    return point


def plan(args: argparse.Namespace) -> List[Point]:
    """Every point of the sweep, seeds outermost (all of seed 0 first)."""
    variants = parse_variants(args.variants)
    axes = parse_grid(args.grid)
    if variants and not any(a.kind == 'config' for a in axes):
        names = list(variants)
        axes.insert(0, Axis('method', ['method'], [[n] for n in names],
                            names))
    if args.config is not None:
        args.config = _existing_config(args.config, '--config')
    common = parse_cfg_options(args.cfg_options)
    points = []
    combos = list(itertools.product(
        *[[(a, i) for i in range(len(a.labels))] for a in axes]))
    for seed in parse_seeds(args.seeds):
        for combo in combos:
            points.append(build_point(args, variants, combo, seed, common,
                                      len(points)))
    keys = [p.key for p in points]
    if len(set(keys)) != len(keys):
        raise SweepError('two grid points resolve to the same run (same '
                         'config and overrides); check the --grid values')
    return points


# ---------------------------------------------------------------- results
def load_results(path: str) -> Dict[str, dict]:
    """Records of a results file by key (later lines win).

    A damaged line (e.g. a run killed while writing) is skipped with a
    warning.
    """
    out: Dict[str, dict] = {}
    if not osp.isfile(path):
        return out
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
            if isinstance(rec, dict) and rec.get('key'):
                out[rec['key']] = rec
    return out


def append_result(path: str, record: dict) -> None:
    """Append one JSON line under an exclusive lock, then fsync."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    line = json.dumps(_jsonable(record), sort_keys=True) + '\n'
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def describe_partition(part: Any) -> Optional[str]:
    """``'iid'``, ``'dir0.1'``, ``'skew0.5'``, ... of a partition dict."""
    if not isinstance(part, dict):
        return None
    typ = str(part.get('type', ''))
    for _, name, param in _PARTITION_SPECS:
        if name == typ:
            prefix = {'IID': 'iid', 'Dirichlet': 'dir', 'Skew': 'skew',
                      'Shards': 'shards', 'Pathological': 'patho'}[name]
            return prefix + ('' if param is None else str(part.get(param)))
    return typ or None


def derived_fields(cfg: Any) -> dict:
    """Fields of the merged config that plots group by."""
    model = cfg.get('model') or {}
    inner = model.get('algorithm') if model.get('type') == 'FeatARC' \
        else model
    tcfg = cfg.get('train_cfg') or {}
    loop = str(tcfg.get('type', ''))
    agg = (tcfg.get('aggregator') or {}).get('type', 'FedAvg') \
        if 'rounds' in tcfg else None
    if loop.endswith('FeatARCTrainLoop'):
        agg = 'FeatARC'
    part = _get(cfg, PARTITION_KEY, None)
    out = dict(
        algorithm=(inner or {}).get('type'),
        model_type=model.get('type'),
        loop=loop,
        aggregation=agg,
        partition=describe_partition(part),
        num_clients=(part or {}).get('num_clients') if isinstance(
            part, dict) else None,
        rounds=tcfg.get('rounds', tcfg.get('max_epochs')),
        local_epochs=tcfg.get('local_epochs'),
        local_iters=tcfg.get('local_iters'),
        participation=tcfg.get('participation'),
        clients_per_round=tcfg.get('clients_per_round'),
        train_subset=_get(cfg, 'train_dataloader.dataset.dataset.subset',
                          None),
        width=_get(cfg, 'model.backbone.base_channels',
                   _get(cfg, 'model.algorithm.backbone.base_channels',
                        None)),
    )
    if 'rounds' in tcfg and tcfg.get('participation') is None and \
            tcfg.get('clients_per_round') is None:
        out['participation'] = 1.0
    if out['rounds'] and out['local_epochs']:
        out['total_local_epochs'] = int(out['rounds']) * int(
            out['local_epochs'])
    return out


def point_work(point: Point) -> float:
    """Training work in passes over the training set (for estimates).

    rounds x local epochs x fraction of clients per round; x1.5 for FeatARC
    (its alignment forward and cluster scoring).
    """
    f = derived_fields(point.cfg)
    rounds = f.get('rounds') or 1
    per_round = f.get('local_epochs') or 1
    frac = f.get('participation')
    if frac is None:
        frac = 1.0
    if f.get('clients_per_round') and f.get('num_clients'):
        frac = f['clients_per_round'] / f['num_clients']
    factor = 1.5 if f.get('aggregation') == 'FeatARC' else 1.0
    if point.no_train:
        return 0.0
    return float(rounds) * float(per_round) * float(frac) * factor


# ---------------------------------------------------------------- training
def _read_last_checkpoint(work_dir: str) -> Optional[str]:
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    if path and not osp.isabs(path) and not osp.isfile(path):
        path = osp.join(work_dir, osp.basename(path))
    return path if path and osp.isfile(path) else None


def checkpoint_info(path: str) -> dict:
    """Rounds (epochs) done and communicated bytes of a checkpoint."""
    from decssl_mm.evaluation.export import load_checkpoint_dict
    ckpt = load_checkpoint_dict(path)
    fed = ckpt.get('federated') if isinstance(ckpt.get('federated'),
                                               dict) else {}
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    rounds = fed.get('round', meta.get('epoch'))
    comm = fed.get('comm_bytes_total')
    if comm is None:
        hub = ckpt.get('message_hub') or {}
        buf = (hub.get('log_scalars') or {}).get('train/comm/bytes_total') \
            if isinstance(hub, dict) else None
        data = getattr(buf, '_log_history', None)
        if data is None and isinstance(buf, dict):
            data = buf.get('_log_history')
        if data is not None and len(data):
            comm = int(data[-1])
    extra = fed.get('extra') if isinstance(fed.get('extra'), dict) else {}
    return dict(
        rounds=None if rounds is None else int(rounds),
        comm_bytes_total=None if comm is None else int(comm),
        featarc_chosen=extra.get('chosen'),
        featarc_clusters=len(extra['clusters']) if extra.get('clusters')
        else None)


def _target_rounds(cfg: Any) -> Optional[int]:
    tcfg = cfg.get('train_cfg') or {}
    value = tcfg.get('rounds', tcfg.get('max_epochs'))
    return None if value is None else int(value)


def finished_checkpoint(point: Point) -> Optional[str]:
    """The final checkpoint of a point whose training completed, if any."""
    path = _read_last_checkpoint(point.work_dir)
    if path is None:
        return None
    try:
        info = checkpoint_info(path)
    except (OSError, ValueError):
        return None
    target = _target_rounds(point.cfg)
    return path if target is None or info['rounds'] == target else None


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_command(point: Point, args: argparse.Namespace,
                  config_file: str) -> List[str]:
    """The command that trains a point (subprocess runners)."""
    tail = ['--work-dir', point.work_dir]
    if _read_last_checkpoint(point.work_dir):
        tail.append('--resume')
    if args.launcher == 'pytorch':
        return ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'),
                config_file, str(args.gpus)] + tail
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'),
            config_file] + tail


def _tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def train_point(point: Point, args: argparse.Namespace) -> None:
    """Train one point (resuming an interrupted run) until its last round."""
    os.makedirs(point.work_dir, exist_ok=True)
    cfg = copy.deepcopy(point.cfg)
    config_file = osp.join(point.work_dir, 'sweep_config.py')
    cfg.dump(config_file)
    if args.runner == 'inprocess':
        _train_inprocess(cfg, point)
        return
    log = osp.join(point.work_dir, 'sweep_train.log')
    cmd = train_command(point, args, config_file)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    if args.launcher == 'pytorch':
        env.setdefault('PORT', str(_free_port()))
        env['PYTHON'] = sys.executable
    with open(log, 'a') as f:
        f.write(f'\n$ {" ".join(cmd)}\n')
        f.flush()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f,
                              stderr=subprocess.STDOUT,
                              timeout=args.timeout or None)
    if proc.returncode != 0:
        raise RuntimeError(f'training exited with code {proc.returncode} '
                           f'(log: {log}); last lines:\n{_tail(log)}')


def _train_inprocess(cfg: Any, point: Point) -> None:
    import gc

    import decssl_mm  # noqa: F401  (compat fixes + registration)
    from mmengine.runner import Runner

    from decssl_mm.utils.config_check import check_config
    cfg.launcher = 'none'
    cfg.experiment_name = f'{point.name}_{time.time_ns()}'
    if _read_last_checkpoint(point.work_dir):
        cfg.resume = True
        cfg.load_from = None
    check_config(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    finally:
        for handler in list(runner.logger.handlers):
            if handler.__class__.__name__ == 'FileHandler':
                handler.close()
                runner.logger.removeHandler(handler)
        del runner
        gc.collect()


# -------------------------------------------------------------- evaluation
def _eval_loader_cfgs(cfg: Any, args: argparse.Namespace
                      ) -> Tuple[dict, dict]:
    """Dataloader configs of the probe/bank (train) and test splits.

    ``knn_train_dataloader``/``knn_val_dataloader`` of the config (or the
    loaders of a ``KNNEvalHook``); otherwise derived from the training
    dataset (Fashion-MNIST only: train/test splits, un-augmented view).
    """
    train = val = None
    for hook in cfg.get('custom_hooks') or ():
        if str(hook.get('type', '')).split('.')[-1] == 'KNNEvalHook':
            train, val = hook['train_dataloader'], hook['val_dataloader']
    if cfg.get('knn_train_dataloader') and cfg.get('knn_val_dataloader'):
        train, val = cfg.knn_train_dataloader, cfg.knn_val_dataloader
    if train is None:
        inner = _get(cfg, 'train_dataloader.dataset.dataset', None) or \
            _get(cfg, 'train_dataloader.dataset', None) or {}
        if str(inner.get('type', '')) != 'FashionMNISTGz':
            raise SweepError(
                'evaluation: the config has no knn_train_dataloader / '
                'knn_val_dataloader (nor a KNNEvalHook), and its training '
                f'dataset {inner.get("type")!r} has no default evaluation '
                'split; add those two keys to the config')
        pipeline = [dict(type='GrayToRGB'), dict(type='Resize',
                                                   scale=(32, 32)),
                    dict(type='PackInputs')]
        base = dict(type='FashionMNISTGz', data_root=inner.get('data_root'),
                    pipeline=pipeline)
        train = dict(batch_size=500, num_workers=0,
                     dataset=dict(base, split='train',
                                  subset=inner.get('subset')))
        val = dict(batch_size=500, num_workers=0,
                   dataset=dict(base, split='test'))
    train, val = copy.deepcopy(dict(train)), copy.deepcopy(dict(val))
    for loader, subset in ((train, args.eval_train_subset),
                           (val, args.eval_test_subset)):
        if subset:
            loader['dataset'] = dict(loader['dataset'], subset=subset)
        if args.eval_workers is not None:
            loader['num_workers'] = args.eval_workers
    return train, val


def _ssl_model_cfg(cfg: Any) -> dict:
    from decssl_mm.utils.tool_config import model_cfg_like_runner
    model = cfg.model
    if model.get('type') == 'FeatARC':
        model = model['algorithm']
    return model_cfg_like_runner(cfg, model)


def _device(name: str) -> str:
    import torch
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return name


def _load_eval_model(point: Point, ckpt: Optional[str], device: str
                     ) -> Tuple[Any, dict]:
    """The model to evaluate: the checkpoint's (a classifier whole, other
    models their backbone; FeatARC its exported cluster) or, without a
    checkpoint, freshly initialised with the point's seed.

    Returns:
        tuple: ``(model on device, info)``.
    """
    import torch

    from decssl_mm.evaluation.export import (check_backbone_compat,
                                             extract_backbone_state,
                                             load_whole_model)
    from decssl_mm.evaluation.linear_probe import has_classifier_head
    from decssl_mm.registry import MODELS
    model_cfg = _ssl_model_cfg(point.cfg)
    torch.manual_seed(point.seed)
    model = MODELS.build(model_cfg)
    info: dict = {}
    if ckpt is None:
        model.init_weights()
    elif has_classifier_head(model):
        load_whole_model(model, ckpt)
    else:
        state, binfo = extract_backbone_state(ckpt)
        check_backbone_compat(state, model_cfg, ckpt)
        model.backbone.load_state_dict(state, strict=True)
        if binfo.get('cluster', -1) >= 0:
            info['featarc_cluster'] = binfo['cluster']
    return model.to(device), info


def _feature_metrics(model: Any, train_loader: Any, val_loader: Any,
                     point: Point, args: argparse.Namespace, device: str
                     ) -> Tuple[dict, dict]:
    """kNN and linear-probe metrics of frozen features, extracted once."""
    import torch

    from decssl_mm.evaluation.knn import extract_features, knn_accuracy
    from decssl_mm.evaluation.linear_probe import train_linear_probe
    metrics, info = {}, {}
    t0 = time.time()
    # inputs reach the device through the model's data preprocessor
    train_x, train_y = extract_features(model, train_loader)
    test_x, test_y = extract_features(model, val_loader)
    info['feature_s'] = round(time.time() - t0, 2)
    info['feat_dim'] = int(train_x.shape[1])
    finite = bool(torch.isfinite(train_x).all() and
                  torch.isfinite(test_x).all())
    num_classes = int(torch.cat([train_y, test_y]).max()) + 1
    if 'knn' in args.eval:
        knn = knn_accuracy(train_x, train_y, test_x, test_y, k=args.knn_k,
                           temperature=args.knn_t,
                           num_classes=num_classes) if finite else \
            {'top1': float('nan'), 'top5': float('nan')}
        metrics.update({f'knn_{k}': v for k, v in knn.items()})
    if 'linear' in args.eval:
        t0 = time.time()
        lin = train_linear_probe(
            train_x, train_y, test_x, test_y, num_classes=num_classes,
            epochs=args.probe_epochs, batch_size=args.probe_batch_size,
            lr=args.probe_lr, weight_decay=args.probe_wd, seed=point.seed,
            device=device)
        info['probe_s'] = round(time.time() - t0, 2)
        metrics.update({f'linear_{k}': v for k, v in lin.items()})
    return metrics, info


def evaluate_point(point: Point, ckpt: Optional[str],
                   args: argparse.Namespace) -> Tuple[dict, dict]:
    """Metrics of a checkpoint: kNN, linear probe, own classifier head.

    With ``ckpt=None`` the model is freshly initialised (seeded by the
    point's seed) and evaluated as it is.

    Returns:
        tuple: ``(metrics, eval_info)``; metrics in percent (None when not
        finite).
    """
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    import decssl_mm  # noqa: F401  (compat fixes + registration)
    from decssl_mm.evaluation.knn import build_knn_dataloader
    from decssl_mm.evaluation.linear_probe import (classifier_accuracy,
                                                   has_classifier_head)
    cfg = point.cfg
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'decssl_mm'))
    device = _device(args.device)
    metrics: Dict[str, Any] = {}
    info: dict = dict(settings=eval_settings(args), device=device)
    if not args.eval:
        return metrics, info
    train_cfg, val_cfg = _eval_loader_cfgs(cfg, args)
    train_loader = build_knn_dataloader(train_cfg)
    val_loader = build_knn_dataloader(val_cfg)
    info.update(num_train=len(train_loader.dataset),
                num_test=len(val_loader.dataset))
    model, extra = _load_eval_model(point, ckpt, device)
    info.update(extra)
    if has_classifier_head(model):
        cls = classifier_accuracy(model, val_loader)
        metrics.update({f'cls_{k}': v for k, v in cls.items()})
    feat_metrics, extra = _feature_metrics(model, train_loader, val_loader,
                                           point, args, device)
    metrics.update(feat_metrics)
    info.update(extra)
    metrics = {k: round(float(v), 4) if math.isfinite(v) else None
               for k, v in metrics.items()}
    return metrics, info


def cleanup(point: Point, ckpt: Optional[str], keep: str) -> None:
    """Remove checkpoints (all but ``ckpt`` for ``'last'``) and client
    state files of a finished point."""
    if keep == 'all' or not osp.isdir(point.work_dir):
        return
    for name in os.listdir(point.work_dir):
        path = osp.join(point.work_dir, name)
        if name.endswith('.pth') and (keep == 'none' or ckpt is None or
                                      osp.abspath(path) != osp.abspath(ckpt)):
            os.remove(path)
    shutil.rmtree(osp.join(point.work_dir, 'client_states'),
                  ignore_errors=True)


# ------------------------------------------------------------------- main
def _record(point: Point, status: str, **extra) -> dict:
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
        config_sha1=point.config_sha1,
        finished_at=datetime.datetime.now().isoformat(timespec='seconds'))
    rec.update(extra)
    return rec


def _fmt_value(v: Any) -> str:
    return json.dumps(_jsonable(v)) if not isinstance(v, str) else v


def print_plan(points: List[Point], done: Dict[str, dict],
               args: argparse.Namespace) -> None:
    """The ``--dry-run`` listing."""
    todo_work = 0.0
    n = len(points)
    for p in points:
        status = 'done' if p.key in done else 'todo'
        if status == 'todo':
            todo_work += point_work(p)
        grid = ' '.join(f'{k}={v}' for k, v in p.grid.items())
        print(f'[{p.index + 1:>3}/{n}] {status}  {p.method}  {grid}  '
              f'seed={p.seed}')
        print(f'        config   : {rel(p.config)}')
        print(f'        work dir : {rel(p.work_dir)}')
        print('        overrides: ' + (' '.join(
            f'{a.key}={_fmt_value(a.value)}' for a in p.overrides) or '-'))
        if p.new_keys:
            print(f'        new keys : {", ".join(p.new_keys)} (absent from '
                  'the config)')
        if p.no_train:
            print('        command  : - (--no-train: evaluation only)')
        elif args.runner == 'subprocess':
            cmd = train_command(p, args, osp.join(p.work_dir,
                                                  'sweep_config.py'))
            print(f'        command  : {" ".join(rel(c) for c in cmd)}')
        print(f'        work     : {point_work(p):g} epochs of the '
              'training set')
    todo = sum(p.key not in done for p in points)
    print(f'Planned: {n} runs, {n - todo} finished (skipped), {todo} to run; '
          f'work to run: {todo_work:g} epochs of the training set; '
          f'results: {rel(args.results)}')


def run_point(point: Point, args: argparse.Namespace) -> dict:
    """Train (if needed) and evaluate one point; return its record."""
    t0 = time.time()
    if point.no_train:
        metrics, info = evaluate_point(point, None, args)
        wall = round(time.time() - t0, 2)
        return _record(point, 'ok', metrics=metrics, eval=info, rounds=0,
                       comm_bytes_total=0, featarc_chosen=None,
                       checkpoint=None, trained=False, train_time_s=0.0,
                       eval_time_s=wall, wall_time_s=wall)
    if point.retrain:  # the config changed: train again from scratch
        cleanup(point, None, 'none')
        with contextlib.suppress(FileNotFoundError):
            os.remove(osp.join(point.work_dir, 'last_checkpoint'))
    ckpt = finished_checkpoint(point) if osp.isdir(point.work_dir) else None
    trained = ckpt is None
    train_s = 0.0
    if trained:
        train_point(point, args)
        train_s = time.time() - t0
        ckpt = finished_checkpoint(point)
        if ckpt is None:
            raise RuntimeError(f'training of {point.name} ended without a '
                               f'checkpoint of the last round in '
                               f'{point.work_dir}')
    t1 = time.time()
    metrics, info = evaluate_point(point, ckpt, args)
    eval_s = time.time() - t1
    cinfo = checkpoint_info(ckpt)
    cleanup(point, ckpt, args.keep_checkpoints)
    return _record(
        point, 'ok', metrics=metrics, eval=info, rounds=cinfo['rounds'],
        comm_bytes_total=cinfo['comm_bytes_total'],
        featarc_chosen=cinfo['featarc_chosen'], checkpoint=ckpt,
        trained=trained, train_time_s=round(train_s, 2),
        eval_time_s=round(eval_s, 2),
        wall_time_s=round(time.time() - t0, 2))


def _summary(metrics: dict) -> str:
    keys = ('knn_top1', 'linear_top1', 'cls_top1')
    return ', '.join(f'{k} {metrics[k]:.2f}' for k in keys
                     if isinstance(metrics.get(k), float))


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
                   'num_clients, subset, rounds, local_epochs, local_iters, '
                   'participation, clients_per_round), method=/config= '
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
                   'configs (e.g. another Fashion-MNIST folder)')
    p.add_argument('--work-dir', required=True,
                   help='folder of the point work dirs (and the results)')
    p.add_argument('--results', help='results file (JSON lines); default '
                   'WORK_DIR/results.jsonl; several sweeps may share one')
    p.add_argument('--eval', default='knn,linear',
                   type=lambda s: [e for e in s.split(',') if e and
                                   e != 'none'],
                   help='evaluations: knn, linear (comma-separated) or '
                   'none; classifiers always also report their own head '
                   '(cls_top1) unless none (default: knn,linear)')
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
    args = p.parse_args(argv)
    bad = [e for e in args.eval if e not in EVALS]
    if bad:
        p.error(f'--eval: unknown evaluation {bad[0]!r}; choose from '
                f'{", ".join(EVALS)} or none')
    if args.launcher == 'pytorch' and args.runner == 'inprocess':
        p.error('--launcher pytorch needs --runner subprocess')
    if args.gpus < 1:
        p.error('--gpus must be >= 1')
    if args.total_epochs is not None and args.total_epochs < 1:
        p.error('--total-epochs must be >= 1')
    args.work_dir = osp.abspath(args.work_dir)
    args.results = osp.abspath(args.results or osp.join(args.work_dir,
                                                        'results.jsonl'))
    return args


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the sweep; return the records written by this call."""
    args = parse_args(argv)
    try:
        points = plan(args)
    except SweepError as e:
        raise SystemExit(f'sweep: error: {e}')
    results = load_results(args.results)
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
        print(f'{head}: running in {rel(p.work_dir)}', flush=True)
        try:
            rec = run_point(p, args)
        except Exception as e:  # noqa: B902 - record and go on
            if args.stop_on_error or isinstance(e, SweepError):
                raise
            failed += 1
            rec = _record(p, 'failed', error=f'{type(e).__name__}: {e}')
            print(f'{head}: FAILED: {type(e).__name__}: {e}', flush=True)
        else:
            print(f'{head}: {_summary(rec["metrics"])} (train '
                  f'{rec["train_time_s"]:.0f} s, eval '
                  f'{rec["eval_time_s"]:.0f} s)', flush=True)
        append_result(args.results, rec)
        written.append(rec)
    print(f'Sweep done: {len(written) - failed} ok, {failed} failed, '
          f'{len(done)} skipped; results in {rel(args.results)}')
    if failed:
        raise SystemExit(1)
    return written


if __name__ == '__main__':
    main()
