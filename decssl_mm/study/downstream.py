"""Downstream evaluation: does a pretrained backbone fine-tune to a better
detector than the same detector from an untrained backbone?

For a downstream config (``configs/downstream/fmnist_det/``) and each
pretrained checkpoint: extract the backbone, fine-tune the detector from it
with every fine-tune seed, evaluate with the config's ``CocoMetric`` (bbox
and, for Mask R-CNN, segm AP and AP50, in percent), and fine-tune the same
detector, with the same seed, from the two untrained references of
:mod:`decssl_mm.evaluation.untrained`:

- ``untrained_init``: the backbone built with the seed and initialised by
  its own ``init_weights()`` (mmpretrain's Kaiming convolutions, constant
  BatchNorm, zero-initialised last BatchNorm of each residual block): where
  pretraining starts;
- ``untrained_default``: the same backbone without ``init_weights()``
  (PyTorch's default initialisation of every layer).

Each (config, checkpoint, seed) is one JSON line (:func:`make_record`)
holding its metrics, the references' metrics at the same seed, the seed,
the config and the code version. References depend only on the config, the
seed and the settings, so they are fine-tuned once and reused for every
checkpoint (also from an earlier run's records in the same file).

:func:`downstream_table` gives, per config, backbone and metric, the
fine-tuned figure, the better reference and their difference over seeds
with a verdict by the 2-sigma rule: **beats untrained** where the mean
margin exceeds twice its standard deviation over seeds, **below untrained**
where it is under minus twice it, **not resolved** otherwise (always with
fewer than 2 seeds).
"""
import copy
import datetime
import hashlib
import json
import math
import os
import os.path as osp
import statistics
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.hooks import Hook

from .margins import REFERENCES, seed_margin

__all__ = [
    'RECORD_FORMAT', 'METRICS', 'VERDICTS', 'load_downstream_config',
    'set_iterations', 'set_data_root', 'reference_backbone_state',
    'prepare_backbone', 'finetune', 'evaluate_backbones', 'make_record',
    'reference_key', 'latest_records', 'verdict_of', 'downstream_rows',
    'downstream_table'
]

RECORD_FORMAT = 'decssl_mm.downstream'
RECORD_VERSION = 1
# record metric name -> CocoMetric key (fractions; records hold percent)
METRICS = {
    'bbox_AP': 'coco/bbox_mAP',
    'bbox_AP50': 'coco/bbox_mAP_50',
    'segm_AP': 'coco/segm_mAP',
    'segm_AP50': 'coco/segm_mAP_50',
}
BEATS, BELOW, UNRESOLVED = 'beats untrained', 'below untrained', \
    'not resolved'
VERDICTS = (BEATS, BELOW, UNRESOLVED)


# ------------------------------------------------------------------ config
def load_downstream_config(path: str,
                           cfg_options: Optional[dict] = None) -> Any:
    """Read a downstream config and apply ``cfg_options``.

    Raises:
        FileNotFoundError: Naming the file, when it does not exist.
        ValueError: Naming the file, when it has no ``model.backbone`` with
            a ``Pretrained`` ``init_cfg``.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'downstream config {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    backbone = (cfg.get('model') or {}).get('backbone')
    init = (backbone or {}).get('init_cfg') or {}
    if not backbone or init.get('type') != 'Pretrained':
        raise ValueError(
            f'{path}: model.backbone.init_cfg must be '
            "dict(type='Pretrained', checkpoint=..., prefix='backbone.') "
            'to fine-tune from an extracted backbone')
    return cfg


def set_iterations(cfg: Any, max_iters: int, origin: str = 'config') -> None:
    """Shorten or lengthen an iteration-based schedule in place.

    ``train_cfg.max_iters`` and ``val_interval`` become ``max_iters`` (one
    evaluation, at the end); iteration-based schedulers keep their shape:
    warm-up ends at ``min(end, max_iters // 10)`` at least 1, other
    schedulers end at ``max_iters`` with milestones scaled.

    Args:
        cfg (Config): The config, changed in place.
        max_iters (int): The new budget (>= 1).
        origin (str): The config file, for messages.

    Raises:
        ValueError: Naming ``train_cfg``, when the config does not train by
            iterations (``IterBasedTrainLoop``), or for ``max_iters < 1``.
    """
    if int(max_iters) < 1:
        raise ValueError(f'max_iters must be >= 1, got {max_iters}')
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('type') != 'IterBasedTrainLoop':
        raise ValueError(
            f"{origin}: train_cfg must be an IterBasedTrainLoop to set the "
            f"iteration budget, got {train_cfg.get('type')!r}")
    old = int(train_cfg['max_iters'])
    train_cfg.max_iters = int(max_iters)
    train_cfg.val_interval = int(max_iters)
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for s in schedulers:
        if s.get('by_epoch', True):
            continue
        if s.get('type') == 'LinearLR':
            s.end = max(1, min(int(s.get('end', old)), max_iters // 10))
            continue
        s.end = int(max_iters)
        if 'milestones' in s:
            s.milestones = [max(1, int(m) * max_iters // old)
                            for m in s.milestones]
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if ckpt is not None and not ckpt.get('by_epoch', True):
        ckpt.interval = int(max_iters)


def set_data_root(cfg: Any, data_root: str) -> None:
    """Point the train/val/test datasets and evaluators at ``data_root``
    (their ``ann_file`` stays relative to it)."""
    root = data_root.rstrip('/') + '/'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader and loader.get('dataset') is not None:
            loader.dataset.data_root = root
    for name, loader in (('val_evaluator', 'val_dataloader'),
                         ('test_evaluator', 'test_dataloader')):
        ev, ld = cfg.get(name), cfg.get(loader)
        if isinstance(ev, dict) and 'ann_file' in ev and ld:
            ev.ann_file = osp.join(root, ld.dataset.ann_file)


def _backbone_build_cfg(cfg: Any) -> dict:
    """The config's backbone without its ``Pretrained`` initialisation (so
    its own initialisation applies)."""
    backbone = cfg.model.backbone
    backbone = dict(backbone.to_dict() if hasattr(backbone, 'to_dict')
                    else backbone)
    backbone.pop('init_cfg', None)
    return backbone


def reference_backbone_state(cfg: Any, init: str, seed: int) -> dict:
    """An untrained backbone of the config (bare state dict).

    Args:
        cfg (Config): The downstream config.
        init (str): ``'model'`` (``init_weights()``) or ``'default'``
            (PyTorch's default initialisation).
        seed (int): Seed of the initialisation (under a private random
            state: the caller's streams are unchanged).
    """
    from mmengine.registry import MODELS, DefaultScope

    from decssl_mm.evaluation.untrained import isolated_seed
    if init not in ('model', 'default'):
        raise ValueError(f"init must be 'model' or 'default', got {init!r}")
    # built as the config's runner builds it (its default scope)
    scope = cfg.get('default_scope') or 'mmdet'
    with isolated_seed(int(seed)), \
            DefaultScope.overwrite_default_scope(scope):
        backbone = MODELS.build(_backbone_build_cfg(cfg))
        if init == 'model':
            backbone.init_weights()
    return {k: v.detach().clone() for k, v in backbone.state_dict().items()}


def prepare_backbone(source: str, cfg: Any, out_path: str) -> dict:
    """Extract the backbone of ``source`` (a federated/mmengine checkpoint
    or an extracted backbone), check it fits the config's backbone, and
    write it in the prefixed layout to ``out_path``.

    Returns:
        dict: The extraction info (source, round, depth, ...).

    Raises:
        FileNotFoundError, ValueError: Naming ``source``.
    """
    from decssl_mm.evaluation.export import (check_backbone_compat,
                                             extract_backbone_state,
                                             save_backbone)
    state, info = extract_backbone_state(source)
    check_backbone_compat(state, cfg.model.backbone, source)
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    save_backbone(state, info, out_path)
    return info


class _MetricsCatcher(Hook):
    """Keeps the last validation metrics of a run."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.metrics: Optional[dict] = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def finetune(cfg: Any, backbone_file: str, seed: int, work_dir: str,
             name: str) -> Tuple[Dict[str, float], float]:
    """Fine-tune and evaluate the config's detector from a backbone file.

    Args:
        cfg (Config): The downstream config (copied; not changed).
        backbone_file (str): Prefixed backbone file (``backbone.*`` keys).
        seed (int): Fine-tune seed (``randomness.seed``).
        work_dir (str): Logs of the run.
        name (str): A name unique in this process (experiment, visualizer).

    Returns:
        tuple: ``({metric: percent}, seconds)``; metrics the config's
        evaluator does not compute are left out.

    Raises:
        RuntimeError: When the run ends without evaluation metrics.
    """
    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg.checkpoint = backbone_file
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    if cfg.get('visualizer'):
        cfg.visualizer.name = name
    start = time.time()
    runner = Runner.from_cfg(cfg)
    catcher = _MetricsCatcher()
    runner.register_hook(catcher)
    runner.train()
    seconds = time.time() - start
    if not catcher.metrics:
        raise RuntimeError(f'{name}: the fine-tune ended without evaluation '
                           'metrics (is val_interval <= max_iters?)')
    metrics = {}
    for ours, theirs in METRICS.items():
        value = catcher.metrics.get(theirs)
        if isinstance(value, (int, float)):
            metrics[ours] = round(100.0 * float(value), 2)
    return metrics, seconds


def reference_key(config_text: str, seed: int, settings: dict) -> str:
    """Key of a (config, seed, settings) fine-tune from the references."""
    text = json.dumps([config_text, int(seed), settings], sort_keys=True,
                      default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def make_record(config: str, method: str, seed: int, metrics: dict,
                references: dict, **extra) -> dict:
    """One results line (see the module's docstring)."""
    from .grid import rel
    from .results import code_version, compute_threads
    key = hashlib.sha1(json.dumps(
        [rel(config), method, int(seed), extra.get('reference_key')],
        sort_keys=True).encode()).hexdigest()[:16]
    rec = dict(
        format=RECORD_FORMAT, version=RECORD_VERSION, key=key, status='ok',
        method=method, config=rel(config), seed=int(seed),
        fields=dict(config=rel(config)), metrics=metrics,
        references=references, code_version=code_version(),
        threads=compute_threads(),
        finished_at=datetime.datetime.now().isoformat(timespec='seconds'))
    rec.update(extra)
    return rec


def _known_references(path: Optional[str]) -> Dict[str, dict]:
    """reference_key -> references of the records already in ``path``."""
    if not path or not osp.isfile(path):
        return {}
    from .results import iter_records
    out = {}
    for _, rec in iter_records(path):
        if rec.get('format') == RECORD_FORMAT and rec.get('reference_key') \
                and all(r in (rec.get('references') or {})
                        for r in REFERENCES):
            out[rec['reference_key']] = rec['references']
    return out


def evaluate_backbones(config: str,
                       backbones: Dict[str, str],
                       seeds: Sequence[int],
                       work_root: str,
                       out: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       max_iters: Optional[int] = None,
                       data_root: Optional[str] = None,
                       log=print) -> List[dict]:
    """Fine-tune ``config`` from every backbone and both untrained
    references with every seed; append one record per (backbone, seed).

    Args:
        config (str): The downstream config file.
        backbones (dict): ``{label: checkpoint}`` (federated checkpoint or
            extracted backbone).
        seeds (Sequence[int]): Fine-tune seeds.
        work_root (str): Where extracted backbones and logs go.
        out (str, optional): Records file (JSON lines), appended to; its
            references are reused.
        cfg_options (dict, optional): Overrides of the config.
        max_iters (int, optional): Iteration budget (:func:`set_iterations`).
        data_root (str, optional): Dataset folder (:func:`set_data_root`).
        log (Callable): Progress messages.

    Returns:
        list[dict]: The records written.
    """
    from .results import append_result
    if not backbones:
        raise ValueError('no backbone to evaluate')
    if not seeds:
        raise ValueError('no fine-tune seed')
    cfg = load_downstream_config(config, cfg_options)
    if max_iters is not None:
        set_iterations(cfg, max_iters, config)
    if data_root is not None:
        set_data_root(cfg, data_root)
    stem = osp.splitext(osp.basename(config))[0]
    root = osp.join(work_root, stem)
    files, infos = {}, {}
    for label, source in backbones.items():
        files[label] = osp.join(root, 'backbones', f'{label}.pth')
        infos[label] = prepare_backbone(source, cfg, files[label])
    settings = dict(cfg_options=cfg_options or {}, max_iters=max_iters,
                    data_root=data_root)
    known = _known_references(out)
    config_text = cfg.pretty_text  # before any run: the config as given
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S_%f')
    records = []
    for seed in seeds:
        ref_key = reference_key(config_text, seed, settings)
        refs = known.get(ref_key)
        ref_seconds = {}
        if refs is None:
            refs = {}
            from decssl_mm.evaluation.export import save_backbone
            from decssl_mm.evaluation.untrained import UNTRAINED_INITS
            for name, init in UNTRAINED_INITS.items():
                path = osp.join(root, 'backbones', f'{name}_seed{seed}.pth')
                state = reference_backbone_state(cfg, init, seed)
                save_backbone(state, dict(source=name, round=0), path)
                refs[name], ref_seconds[name] = finetune(
                    cfg, path, seed, osp.join(root, name, f'seed{seed}'),
                    f'{stem}_{name}_s{seed}_{stamp}')
                log(f'{stem} seed {seed} {name}: {refs[name]}')
            known[ref_key] = refs
        for label in backbones:
            metrics, seconds = finetune(
                cfg, files[label], seed, osp.join(root, label, f'seed{seed}'),
                f'{stem}_{label}_s{seed}_{stamp}')
            log(f'{stem} seed {seed} {label}: {metrics}')
            rec = make_record(
                config, label, seed, metrics, refs,
                checkpoint=backbones[label],
                backbone=infos[label],
                reference_key=ref_key,
                settings=settings,
                max_iters=int(cfg.train_cfg.max_iters),
                finetune_s=round(seconds, 1),
                reference_finetune_s={k: round(v, 1)
                                      for k, v in ref_seconds.items()})
            if out:
                append_result(out, rec)
            records.append(rec)
    return records


# ------------------------------------------------------------------ table
def latest_records(records: Iterable[dict]) -> List[dict]:
    """The ``ok`` downstream records, the last of each key."""
    latest: Dict[str, dict] = {}
    for rec in records:
        if rec.get('format') == RECORD_FORMAT and rec.get('status') == 'ok':
            latest[rec['key']] = rec
    return list(latest.values())


def verdict_of(margins: Sequence[float]) -> str:
    """The 2-sigma rule over seeds (see the module's docstring)."""
    if len(margins) < 2:
        return f'{UNRESOLVED} ({len(margins)} seed)'
    mean, sd = statistics.fmean(margins), statistics.stdev(margins)
    if mean > 2 * sd:
        return BEATS
    if mean < -2 * sd:
        return BELOW
    return UNRESOLVED


def _mean_sd(xs: Sequence[float]) -> str:
    if not xs:
        return 'n/a'
    sd = statistics.stdev(xs) if len(xs) > 1 else math.nan
    return f'{statistics.fmean(xs):.1f} ± ' + \
        ('?' if math.isnan(sd) else f'{sd:.1f}')


def downstream_rows(records: Iterable[dict]) -> List[dict]:
    """One row per (config, backbone, metric): values, better references
    and margins over seeds, and the verdict."""
    groups: Dict[Tuple[str, str, str], dict] = {}
    for rec in latest_records(records):
        for metric in METRICS:
            m = seed_margin(rec, metric)
            if m is None:
                continue
            row = groups.setdefault(
                (rec['config'], rec['method'], metric),
                dict(config=rec['config'], method=rec['method'],
                     metric=metric, seeds=[], values=[], best_refs=[],
                     margins=[]))
            row['seeds'].append(int(rec['seed']))
            row['values'].append(m[0])
            row['best_refs'].append(m[1])
            row['margins'].append(m[2])
    rows = [groups[k] for k in sorted(groups)]
    for row in rows:
        row['verdict'] = verdict_of(row['margins'])
    return rows


def downstream_table(records: Iterable[dict]) -> str:
    """A markdown table of :func:`downstream_rows`."""
    rows = downstream_rows(records)
    if not rows:
        return '(no downstream record with metrics and both references)\n'
    head = ['config', 'backbone', 'metric', 'seeds', 'fine-tuned',
            'better untrained', 'margin (mean ± sd)', 'verdict (2σ)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [
            osp.splitext(osp.basename(r['config']))[0], r['method'],
            r['metric'], str(len(r['seeds'])), _mean_sd(r['values']),
            _mean_sd(r['best_refs']), _mean_sd(r['margins']),
            f"**{r['verdict']}**"
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
