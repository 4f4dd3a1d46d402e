"""Running sweep points: train (subprocess or in process, resuming),
evaluate the final checkpoint, clean up."""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from decssl_mm.utils.checkpoint_io import read_clusters
from .grid import ROOT, rel, to_jsonable
from .eval_settings import eval_options, eval_settings
from .plan import Point, eval_loaders, point_images, point_work
from .results import make_record


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
        featarc_clusters=len(read_clusters(extra)) or None)


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
# untrained references by their inputs, shared by the points of a sweep
_REFERENCES: Dict[str, dict] = {}


def device_of(name: str) -> str:
    """``'auto'``: CUDA when available, else the CPU; other names as given.
    """
    import torch
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return name


def evaluate_point(point: Point, ckpt: Optional[str],
                   args: argparse.Namespace) -> Tuple[dict, dict, dict]:
    """Metrics of a checkpoint and of its untrained references.

    :func:`decssl_mm.evaluation.evaluate_checkpoint` with the sweep's
    settings; with ``ckpt=None`` the model's own initialisation (seeded by
    the point's seed) is evaluated.

    Returns:
        tuple: ``(metrics, eval_info, references)``; metrics in percent
        (None when not finite); references: the same metrics of the
        untrained network, ``{'untrained_init': ..., 'untrained_default':
        ...}`` (empty with ``--no-references``).
    """
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    import decssl_mm  # noqa: F401  (compat fixes + registration)
    from decssl_mm.evaluation import evaluate_checkpoint
    cfg = point.cfg
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'decssl_mm'))
    device = device_of(args.device)
    info: dict = dict(settings=eval_settings(args), device=device)
    if not args.eval:
        return {}, info, {}
    result = evaluate_checkpoint(
        cfg, ckpt, evals=args.eval, options=eval_options(args),
        loaders=eval_loaders(point, args),
        references=not getattr(args, 'no_references', False),
        seed=point.seed, device=device, cache=_REFERENCES)
    extra = result['info']
    if extra.get('cluster', -1) >= 0:
        info['featarc_cluster'] = extra['cluster']
    for key, value in extra.items():  # sizes, timings (<what>_s), loaded
        if key in ('num_train', 'num_test', 'feat_dim', 'loaded') \
                or key.endswith('_s'):
            info[key] = value
    return result['metrics'], info, result['references']


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


# ------------------------------------------------------------------ runs
def _fmt_value(v: Any) -> str:
    return json.dumps(to_jsonable(v)) if not isinstance(v, str) else v


def print_plan(points: List[Point], done: Dict[str, dict],
               args: argparse.Namespace) -> None:
    """The ``--dry-run`` listing."""
    todo_work = todo_images = 0.0
    n = len(points)
    for p in points:
        status = 'done' if p.key in done else 'todo'
        if status == 'todo':
            todo_work += point_work(p)
            todo_images += point_work(p) * (point_images(p) or 0)
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
              f'training set ({point_images(p) or "?"} images)')
    todo = sum(p.key not in done for p in points)
    print(f'Planned: {n} runs, {n - todo} finished (skipped), {todo} to run; '
          f'work to run: {todo_work:g} epochs of the training set '
          f'({todo_images:.0f} image-epochs, SimCLR-equivalent); '
          f'results: {rel(args.results)}')


def run_point(point: Point, args: argparse.Namespace) -> dict:
    """Train (if needed) and evaluate one point; return its record."""
    t0 = time.time()
    if point.no_train:
        metrics, info, refs = evaluate_point(point, None, args)
        wall = round(time.time() - t0, 2)
        return make_record(point, 'ok', metrics=metrics, references=refs,
                           eval=info,
                           rounds=0, comm_bytes_total=0, featarc_chosen=None,
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
    metrics, info, refs = evaluate_point(point, ckpt, args)
    eval_s = time.time() - t1
    cinfo = checkpoint_info(ckpt)
    cleanup(point, ckpt, args.keep_checkpoints)
    return make_record(
        point, 'ok', metrics=metrics, references=refs, eval=info,
        rounds=cinfo['rounds'],
        comm_bytes_total=cinfo['comm_bytes_total'],
        featarc_chosen=cinfo['featarc_chosen'], checkpoint=ckpt,
        trained=trained, train_time_s=round(train_s, 2),
        eval_time_s=round(eval_s, 2),
        wall_time_s=round(time.time() - t0, 2))
