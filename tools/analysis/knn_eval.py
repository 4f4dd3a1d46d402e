"""Weighted-kNN accuracy of the backbone of a checkpoint, beside the same
network untrained.

    python tools/analysis/knn_eval.py CONFIG CHECKPOINT [--cluster N]
        [--k 200] [--temperature 0.1] [--linear] [--bnre] [--seed S]
        [--no-references] [--cfg-options k=v ...]

CONFIG builds the model (``model``, e.g. a pre-training config) and gives
the labelled data by the rule of
:func:`decssl_mm.evaluation.find_eval_loaders`: ``knn_train_dataloader``
(the feature bank) and ``knn_val_dataloader`` (the queries), else the
dataloaders of a ``KNNEvalHook`` in ``custom_hooks``. CHECKPOINT is any
checkpoint :func:`decssl_mm.evaluation.load_eval_model` reads (federated,
FeatARC with ``--cluster``, or a file of ``extract_backbone.py``); the
feature is the global-average-pooled last backbone stage. ``--linear``
adds the feature-based linear probe; ``--bnre`` repeats each evaluation
after re-estimating the frozen backbone's BatchNorm statistics on the bank
images (the paper's probe does it while it trains). Every figure is printed beside the
same network untrained (model init / PyTorch default init, seeded by
``--seed``, default ``randomness.seed`` of the config).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='kNN evaluation')
    parser.add_argument('config', help='config with the model and kNN data')
    parser.add_argument('checkpoint', help='checkpoint or extracted backbone')
    parser.add_argument('--cluster', type=int, default=None,
                        help='FeatARC cluster model to evaluate')
    parser.add_argument('--k', type=int, default=200)
    parser.add_argument('--temperature', type=float, default=0.1)
    parser.add_argument('--linear', action='store_true',
                        help='also run the feature-based linear probe')
    parser.add_argument('--bnre', action='store_true',
                        help='also evaluate after BatchNorm re-estimation '
                        'on the bank images (every figure, references too)')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the untrained references (default: '
                        'randomness.seed of the config, else 0)')
    parser.add_argument('--no-references', action='store_true',
                        help='skip the untrained references')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def _line(name: str, metrics: dict, key: str) -> str:
    """``kNN top-1 T (untrained: A model init, B PyTorch default init)``.
    """
    value = metrics.get(key)
    text = f'{name} {value:.2f}' if value is not None else f'{name} n/a'
    init = metrics.get(f'{key}_untrained_init')
    default = metrics.get(f'{key}_untrained_default')
    if init is not None and default is not None:
        text += (f' (untrained: {init:.2f} model init, {default:.2f} '
                 'PyTorch default init)')
    return text


def main(argv: Optional[List[str]] = None) -> dict:
    """Print the figures; return the trained kNN metrics (``top1``,
    ``top5``)."""
    args = parse_args(argv)
    from decssl_mm.evaluation import EvalConfigError, evaluate_checkpoint
    from decssl_mm.utils.tool_config import load_tool_config

    cfg = load_tool_config(args.config, args.cfg_options)
    seed = args.seed if args.seed is not None else \
        int((cfg.get('randomness') or {}).get('seed') or 0)
    evals = ('knn', 'linear') if args.linear else ('knn', )
    if args.bnre:
        evals += tuple(f'{e}_bnre' for e in evals)
    try:
        result = evaluate_checkpoint(
            cfg, args.checkpoint, cluster=args.cluster, evals=evals,
            knn=dict(k=args.k, temperature=args.temperature),
            references=not args.no_references, seed=seed)
    except EvalConfigError as e:
        raise SystemExit(f'knn_eval: error: {e}')
    metrics, info = dict(result['metrics']), result['info']
    trained = {k[len('knn_'):]: v for k, v in metrics.items()
               if k.startswith('knn_') and not k.startswith('knn_bnre_')}
    for name, ref in result['references'].items():
        metrics.update({f'{k}_{name}': v for k, v in ref.items()})
    where = f" (cluster {info['cluster']})" if info['cluster'] >= 0 else ''
    print(f'kNN k={args.k} T={args.temperature} on {args.checkpoint}{where}, '
          f"round {info['round']}: " +
          ', '.join(f'{k} {v:.2f}' if v is not None else f'{k} n/a'
                    for k, v in trained.items()))
    print(f"  {info['num_train']} bank / {info['num_test']} query images; "
          f'untrained references seeded with {seed}:')
    lines = [('kNN top-1', 'knn_top1'), ('kNN top-5', 'knn_top5'),
             ('linear probe top-1', 'linear_top1'),
             ('kNN top-1 after BN re-estimation', 'knn_bnre_top1'),
             ('linear probe top-1 after BN re-estimation',
              'linear_bnre_top1'),
             ('own classifier top-1', 'cls_top1')]
    for name, key in lines:
        if key in metrics:
            print('  ' + _line(name, metrics, key))
    return trained


if __name__ == '__main__':
    main()
