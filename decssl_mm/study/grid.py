"""Sweep grids: parsing ``--grid``/``--cfg-options`` and applying them to
configs (dotted keys, aliases, partition names, fixed total epochs)."""
import ast
import contextlib
import copy
import hashlib
import json
import math
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from decssl_mm.utils.partition_names import (PartitionNameError,
                                             parse_partition_name)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

RESULTS_FORMAT = 'decssl_mm.sweep'
RESULTS_VERSION = 1
CONFIG_AXES = ('method', 'config')
SIBLING_AXES = ('model', 'algo')
PARTITION_KEY = 'train_dataloader.dataset.partition'
KEY_ALIASES = {
    'partition': PARTITION_KEY,
    'alpha': PARTITION_KEY + '.alpha',
    # the partition draw, independent of the training seed (--seeds)
    'partition_seed': PARTITION_KEY + '.seed',
    'num_clients': PARTITION_KEY + '.num_clients',
    'subset': 'train_dataloader.dataset.dataset.subset',
    'rounds': 'train_cfg.rounds',
    'local_epochs': 'train_cfg.local_epochs',
    'local_iters': 'train_cfg.local_iters',
    'participation': 'train_cfg.participation',
    'clients_per_round': 'train_cfg.clients_per_round',
}
# Size knobs of the study configs: top-level ``study_<name>`` keys read from
# ``STUDY_<NAME>`` in configs/study/_base_/study_fmnist.py, set before the
# config is loaded so that every key derived from them follows.
KNOB_PREFIX = 'study_'
KNOB_ENV_PREFIX = 'STUDY_'
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
        out[name] = existing_config(path, f'--variants {spec!r}')
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


def is_knob(key: str) -> bool:
    """Whether ``key`` names a study size knob (``study_<name>``)."""
    return '.' not in key and key.startswith(KNOB_PREFIX)


def knob_env_name(key: str) -> str:
    """The environment variable a knob is read from: ``STUDY_<NAME>``."""
    return key.upper()


def knob_env(items: Sequence[Tuple[str, Any, str]]) -> Dict[str, str]:
    """``{STUDY_<NAME>: value}`` of the knob items (later ones win).

    Raises:
        SweepError: If a knob value is neither a number nor a plain word,
            naming its origin.
    """
    env: Dict[str, str] = {}
    for key, value, origin in items:
        if not is_knob(key):
            continue
        env[knob_env_name(key)] = _knob_text(key, value, origin)
    return env


def _knob_text(key: str, value: Any, origin: str) -> str:
    """The text a knob's ``STUDY_<NAME>`` variable carries: a number, or a
    plain word for a knob read inside a string (``study_precision``)."""
    if isinstance(value, str) and re.fullmatch(r'[A-Za-z0-9_.-]+', value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SweepError(f'{origin}: study knob {key}={value!r}: '
                         'expected a number or a plain word')
    return repr(value)


@contextlib.contextmanager
def knob_environment(items: Sequence[Tuple[str, Any, str]]) -> Iterator:
    """Set ``STUDY_<NAME>`` for the knob items while a config is loaded
    (the environment is restored afterwards)."""
    env = knob_env(items)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def check_knobs(cfg: Any, items: Sequence[Tuple[str, Any, str]]) -> None:
    """Every knob item took effect, and no size came from the sweep's own
    environment.

    Raises:
        SweepError: If the config has no such knob (or does not read it from
            ``STUDY_<NAME>``), or it read an environment variable the sweep
            did not set (a run's size must be in its record).
    """
    for key, value, origin in items:
        if is_knob(key) and cfg.get(key, _MISSING) != value:
            raise SweepError(
                f"{origin}: {key} is not a size knob of this config (no "
                f"`{key} = {{{{'${knob_env_name(key)}:...'}}}}` in its "
                '_base_; see configs/study/_base_/study_fmnist.py)')
    ours = knob_env(items)
    used = getattr(cfg, 'env_variables', None) or {}
    inherited = sorted(k for k in used if k not in ours)
    if inherited:
        raise SweepError(
            f'{", ".join(inherited)} set in the environment changes the '
            'config: give study sizes as --cfg-options study_<name>=V or '
            '--grid study_<name>=V1,V2 (so they enter the point keys and '
            'records), and unset the variable')


def existing_config(path: str, what: str) -> str:
    """The absolute path of a config file (as given or under the
    repository root).

    Raises:
        SweepError: If it does not exist, naming ``what``.
    """
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


def get_key(cfg: Any, key: str, default: Any = _MISSING) -> Any:
    """The value at dotted ``key`` (list items by index), else
    ``default``."""
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


def set_key(cfg: Any, key: str, value: Any, origin: str) -> bool:
    """Set ``key`` (replace); return whether it existed before.

    Raises:
        SweepError: If the parent of ``key`` is missing, naming ``origin``.
    """
    from mmengine.config import ConfigDict
    parts = key.split('.')
    parent = get_key(cfg, '.'.join(parts[:-1])) if len(parts) > 1 \
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
    """A partition dict from a short name (``iid``, ``dir0.1``, ...).

    See :func:`decssl_mm.utils.partition_names.parse_partition_name`.

    Raises:
        SweepError: On an unknown name, naming ``origin`` and the forms.
    """
    try:
        return parse_partition_name(spec, current)
    except PartitionNameError as e:
        raise SweepError(f'{origin}: {e}') from None


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
            value = partition_from_spec(value, get_key(cfg, key, None), origin)
        return [Assignment(key, value, origin)]
    if key.endswith('partition.alpha') and value == 'iid':
        part_key = key[:-len('.alpha')]
        return [Assignment(part_key,
                           partition_from_spec('iid', get_key(cfg, part_key,
                                                           None), origin),
                           origin)]
    out = [Assignment(key, value, origin)]
    if key.endswith('train_cfg.local_epochs') and \
            get_key(cfg, 'train_cfg.local_iters', None) is not None:
        out.append(Assignment(key[:-len('local_epochs')] + 'local_iters',
                              None, origin))
    if key.endswith('train_cfg.local_iters') and value is not None and \
            get_key(cfg, 'train_cfg.local_epochs', None) is not None:
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
            if not set_key(cfg, a.key, a.value, a.origin):
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
        set_key(cfg, a.key, a.value, origin)
    return out


def schedule_length(cfg: Any) -> Optional[int]:
    """Epochs of the parameter schedule over the whole run: rounds, or
    rounds x local epochs under ``train_cfg.schedule_unit='local_epoch'``
    (a round of ``local_iters`` counts as one)."""
    rounds = get_key(cfg, 'train_cfg.rounds', None)
    if rounds is None:
        return None
    local = get_key(cfg, 'train_cfg.local_epochs', None)
    if get_key(cfg, 'train_cfg.schedule_unit', 'round') == 'local_epoch' \
            and isinstance(local, int) and not isinstance(local, bool):
        return int(rounds) * local
    return int(rounds)


def sync_schedule(cfg: Any, old_rounds: Any,
                  old_length: Any = None) -> List[Assignment]:
    """Make epoch-based schedulers tied to the old schedule length (rounds,
    or total local epochs, see :func:`schedule_length`) follow the new one,
    and the top-level ``rounds`` the new round count."""
    rounds = get_key(cfg, 'train_cfg.rounds', None)
    if rounds is None or old_rounds is None:
        return []
    if old_length is None:
        old_length = old_rounds
    length = schedule_length(cfg)
    out = []
    scheds = cfg.get('param_scheduler')
    items = scheds if isinstance(scheds, list) else \
        [scheds] if isinstance(scheds, dict) else []
    prefix = 'param_scheduler' + ('.{}' if isinstance(scheds, list) else '')
    for i, s in enumerate(items):
        if length == old_length or not isinstance(s, dict) or \
                not s.get('by_epoch', True):
            continue
        for k in ('end', 'T_max'):
            if s.get(k) == old_length:
                s[k] = length
                out.append(Assignment(f'{prefix.format(i)}.{k}', length,
                                      'sync with the schedule length'))
    if rounds != old_rounds and cfg.get('rounds') == old_rounds:
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
    part = get_key(cfg, PARTITION_KEY, None)
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


# ------------------------------------------------------------------ values
def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (configs as dicts, NaN as None, other
    objects as their repr)."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def short_hash(obj: Any, n: int = 12) -> str:
    """The first ``n`` hex digits of the SHA-1 of ``obj`` as sorted JSON."""
    text = json.dumps(to_jsonable(obj), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:n]
