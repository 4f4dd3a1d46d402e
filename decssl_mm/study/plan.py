"""Sweep planning: one :class:`Point` (merged config, keys, work dir) per
grid combination and seed."""
import argparse
import hashlib
import itertools
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from decssl_mm.utils.partition_names import partition_name
from .eval_settings import eval_settings
from .grid import (CONFIG_AXES, PARTITION_KEY, SIBLING_AXES, Assignment,
                   Axis, SweepError, apply_assignments, apply_total_epochs,
                   check_knobs, check_partition, existing_config, get_key,
                   knob_environment, parse_cfg_options, parse_grid,
                   parse_seeds, parse_variants, rel, schedule_length,
                   set_data_root, short_hash, sync_schedule)


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
            config = existing_config(
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


def eval_loaders(point: Point, args: argparse.Namespace
                 ) -> Tuple[dict, dict]:
    """The (bank, query) dataloader configs a point is evaluated on.

    From ``--eval-loaders CONFIG`` when given (its ``data_root`` replaced by
    ``--data-root``), else from the point's merged config, by the one rule
    of :func:`decssl_mm.evaluation.find_eval_loaders`; then
    ``--eval-train-subset``/``--eval-test-subset``/``--eval-workers``.

    Raises:
        SweepError: If the config has no evaluation loaders, naming it and
            the keys looked for.
    """
    from mmengine.config import Config

    from decssl_mm.evaluation.loaders import (EvalConfigError,
                                              find_eval_loaders,
                                              override_eval_loader)
    cfg, source = point.cfg, f'{rel(point.config)} (merged)'
    if getattr(args, 'eval_loaders', None):
        cfg, source = Config.fromfile(args.eval_loaders), '--eval-loaders ' \
            + rel(args.eval_loaders)
        if args.data_root:
            set_data_root(cfg, args.data_root)
    try:
        train, val = find_eval_loaders(cfg, source)
    except EvalConfigError as e:
        raise SweepError(f'evaluation: {e} (or give --eval-loaders CONFIG)')
    return (override_eval_loader(train, args.eval_train_subset,
                                 args.eval_workers),
            override_eval_loader(val, args.eval_test_subset,
                                 args.eval_workers))


def build_point(args: argparse.Namespace, variants: Dict[str, str],
                combo: Sequence[Tuple[Axis, int]], seed: int,
                common: List[Tuple[str, Any]], index: int) -> Point:
    """Load and merge the config of one point; compute its keys."""
    from mmengine.config import Config
    config, method = _point_config(args, variants, combo)
    items = [(k, v, '--cfg-options') for k, v in common]
    for axis, i in combo:
        if axis.kind == 'keys':
            for k, v in zip(axis.keys, axis.values[i]):
                items.append((k, v, f'--grid {axis.name}={axis.labels[i]}'))
    items += [(k, seed, '--seeds') for k in args.seed_keys]
    # size knobs (study_<name>) are in place while the config loads, so
    # every key derived from them follows; they stay in the overrides
    with knob_environment(items):
        cfg = Config.fromfile(config)
    check_knobs(cfg, items)
    old_rounds = get_key(cfg, 'train_cfg.rounds', None)
    old_length = schedule_length(cfg)
    overrides: List[Assignment] = []
    if args.data_root:
        overrides += set_data_root(cfg, args.data_root)
    applied, new = apply_assignments(cfg, items)
    overrides += applied
    if args.total_epochs:
        overrides += apply_total_epochs(cfg, args.total_epochs,
                                        f'point {index + 1} ({method})')
    elif get_key(cfg, 'train_cfg.local_epochs', None) == 'all':
        raise SweepError('--grid local_epochs=all needs --total-epochs')
    if not args.no_sync_schedule:
        overrides += sync_schedule(cfg, old_rounds, old_length)
    check_partition(cfg, f'point {index + 1} ({method}, {rel(config)})')
    grid = {axis.name: axis.labels[i] for axis, i in combo}
    body = dict(config=rel(config),
                overrides=[(a.key, a.value) for a in overrides], seed=seed)
    if args.no_train:
        body['no_train'] = True
    train_key = short_hash(body)
    # the label is part of the key: one config run under two names (e.g. in
    # two sweeps sharing a results file) gives two records
    key = short_hash(dict(train=train_key, method=method,
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
        args.config = existing_config(args.config, '--config')
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
    if args.eval:  # every point can be evaluated: checked before training
        for point in points:
            eval_loaders(point, args)
    return points


def training_device_type() -> str:
    """The device type a run started here trains on: ``'cuda'`` when
    mmengine's Runner would pick a GPU, else ``'cpu'`` (what
    ``dtype='auto'`` is resolved against in the records)."""
    from mmengine.device import get_device
    return 'cuda' if get_device() == 'cuda' else 'cpu'


def precision_of(cfg: Any, device_type: Optional[str] = None) -> str:
    """``'bf16'``/``'fp16'`` for an autocast optimizer wrapper, else
    ``'fp32'`` (the precision of the local steps' forward and backward).

    Args:
        cfg: The merged config.
        device_type (str, optional): ``'cpu'`` or ``'cuda'``: where the
            run trains, which decides what ``dtype='auto'`` becomes.
            Defaults to :func:`training_device_type`.
    """
    wrapper = cfg.get('optim_wrapper') or {}
    if not str(wrapper.get('type', '')).endswith(
            ('AutocastOptimWrapper', 'AmpOptimWrapper')):
        return 'fp32'
    dtype = str(wrapper.get('dtype') or 'float16')
    if dtype == 'auto':
        from decssl_mm.utils.native_bf16 import resolve_precision
        return resolve_precision('auto',
                                 device_type or training_device_type())
    return 'bf16' if 'bf' in dtype else 'fp16'


def derived_fields(cfg: Any) -> dict:
    """Fields of the merged config that plots group by."""
    model = cfg.get('model') or {}
    inner = model.get('algorithm') if model.get('type') == 'FeatARC' \
        else model
    tcfg = cfg.get('train_cfg') or {}
    loop = str(tcfg.get('type', ''))
    agg = (tcfg.get('aggregator') or {}).get('type', 'FedAvg') \
        if 'rounds' in tcfg else None
    server = str((tcfg.get('server') or {}).get('type', ''))
    featarc_mode = None
    if server.endswith('ClusteredServer'):
        # FeatARC-paper / FeatARC-ours when the config names the mode
        featarc_mode = (tcfg.get('server') or {}).get('mode')
        agg = f'FeatARC-{featarc_mode}' if featarc_mode else 'FeatARC'
    trainer = str((tcfg.get('trainer') or {}).get('type', ''))
    if agg is not None and trainer and \
            trainer.split('.')[-1] != 'ClientTrainer':
        # a trainer of its own names the algorithm (FedProxTrainer ->
        # FedProx, ScaffoldTrainer -> Scaffold)
        name = trainer.split('.')[-1]
        agg = name[:-len('Trainer')] if name.endswith('Trainer') and \
            name != 'Trainer' else name
    part = get_key(cfg, PARTITION_KEY, None)
    out = dict(
        algorithm=(inner or {}).get('type'),
        model_type=model.get('type'),
        loop=loop,
        aggregation=agg,
        partition=partition_name(part),
        num_clients=(part or {}).get('num_clients') if isinstance(
            part, dict) else None,
        rounds=tcfg.get('rounds', tcfg.get('max_epochs')),
        local_epochs=tcfg.get('local_epochs'),
        local_iters=tcfg.get('local_iters'),
        participation=tcfg.get('participation'),
        featarc_mode=featarc_mode,
        clients_per_round=tcfg.get('clients_per_round'),
        train_subset=get_key(cfg, 'train_dataloader.dataset.dataset.subset',
                             None),
        width=get_key(cfg, 'model.backbone.base_channels',
                      get_key(cfg, 'model.algorithm.backbone.base_channels',
                              None)),
        precision=precision_of(cfg),
        weighting=(tcfg.get('aggregator') or {}).get('weighting')
        if agg is not None else None,
    )
    if 'rounds' in tcfg and tcfg.get('participation') is None and \
            tcfg.get('clients_per_round') is None:
        out['participation'] = 1.0
    if out['rounds'] and out['local_epochs']:
        out['total_local_epochs'] = int(out['rounds']) * int(
            out['local_epochs'])
    return out


# Training cost per image-epoch relative to SimCLR at the study size
# (ResNet_CIFAR-18 x16, 32 px, batch 64, one CPU core), for estimates.
# Measured: the round time of one 1-round run (2,000 images, 10 clients,
# OMP_NUM_THREADS=1, the 2-core machine at load ~4.5) of each study config:
# SimCLR 64.1 s, Dec-SL 22.4 s, MoCo v2 30.4 s, BYOL 76.2 s (SimSiam,
# unmeasured, counts as SimCLR). Unlisted algorithms count as 1.
RELATIVE_COST = {
    'ImageClassifier': 0.35,  # Dec-SL: one view, no projector
    'MoCo': 0.47,  # one view back-propagated, the key encoder forward only
    'BYOL': 1.19,  # both views through the online and the target network
}
# FeatARC (either mode): its first round measured 0.94x FedAvg (60.4 s: no
# cluster scoring yet); from the second round on, scoring the clusters and
# the alignment targets add about 3 feature passes over the participants'
# images (~4 ms an image, the evaluation's feature extraction), so ~1.5x.
FEATARC_COST = 1.5


def point_cost(point: Point) -> float:
    """Training cost of one pass over a point's training set, relative to
    SimCLR (:data:`RELATIVE_COST`, :data:`FEATARC_COST`)."""
    f = derived_fields(point.cfg)
    cost = RELATIVE_COST.get(f.get('algorithm'), 1.0)
    if str(f.get('aggregation') or '').startswith('FeatARC'):
        cost *= FEATARC_COST
    return cost


def point_work(point: Point) -> float:
    """Training work in passes over the training set (for estimates).

    rounds x local epochs x fraction of clients per round x the relative
    cost of the algorithm (:func:`point_cost`); 0 for ``--no-train``.
    """
    if point.no_train:
        return 0.0
    f = derived_fields(point.cfg)
    rounds = f.get('rounds') or 1
    per_round = f.get('local_epochs') or 1
    frac = f.get('participation')
    if frac is None:
        frac = 1.0
    if f.get('clients_per_round') and f.get('num_clients'):
        frac = f['clients_per_round'] / f['num_clients']
    return float(rounds) * float(per_round) * float(frac) * point_cost(point)


def point_images(point: Point) -> Optional[int]:
    """Images of a point's training set (``subset``), None when unknown."""
    n = derived_fields(point.cfg).get('train_subset')
    return int(n) if isinstance(n, int) and not isinstance(n, bool) \
        else None
