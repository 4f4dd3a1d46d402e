"""Figures of the backbone of a checkpoint by registered evaluations
(weighted kNN by default), beside the same network untrained.

    python tools/analysis/knn_eval.py CONFIG CHECKPOINT [--cluster N]
        [--eval knn,linear,ncm,...] [--k 200] [--temperature 0.1]
        [--linear] [--bnre] [--eval-options NAME.KEY=VALUE ...] [--seed S]
        [--no-references] [--cfg-options k=v ...]

CONFIG builds the model (``model``, e.g. a pre-training config) and gives
the labelled data by the rule of
:func:`decssl_mm.evaluation.find_eval_loaders`: ``knn_train_dataloader``
(the bank) and ``knn_val_dataloader`` (the queries), else the dataloaders
of an ``EvaluationHook`` (or ``KNNEvalHook``) in ``custom_hooks``.
CHECKPOINT is any checkpoint :func:`decssl_mm.evaluation.load_eval_model`
reads (federated, FeatARC with ``--cluster``, or a file of
``extract_backbone.py``); the feature is the global-average-pooled last
backbone stage. ``--eval`` names the evaluations (``EVALUATIONS``: ``knn``,
``linear``, ``ncm``, ...; default ``knn``); ``--linear`` adds the
feature-based linear probe; ``--bnre`` repeats each evaluation after
re-estimating the frozen backbone's BatchNorm statistics on the bank images
(the paper's probe does it while it trains). Every figure is printed beside
the same network untrained (model init / PyTorch default init, seeded by
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
    parser.add_argument('--eval', default='knn',
                        help='evaluations by registered name, comma-'
                        'separated (EVALUATIONS: knn, linear, ncm, ...; '
                        '<name>_bnre after BatchNorm re-estimation); '
                        'default: knn')
    parser.add_argument('--eval-options', nargs='+', action='extend',
                        default=[], metavar='NAME.KEY=VALUE',
                        help='settings of an evaluation, e.g. '
                        'ncm.normalize=False')
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
    from decssl_mm.evaluation.untrained import untrained_suffix
    return text + untrained_suffix(metrics, key)


def _evaluations(args: argparse.Namespace) -> list:
    """The evaluations of ``--eval``, ``--linear``, ``--bnre`` and their
    settings; an unknown name exits with the registered ones."""
    from decssl_mm.evaluation import build_evaluations
    from decssl_mm.study import SweepError, parse_eval_options
    names = [e for e in args.eval.split(',') if e]
    if args.linear and 'linear' not in names:
        names.append('linear')
    if args.bnre:
        names += [f'{e}_bnre' for e in names if not e.endswith('_bnre')]
    try:
        options = parse_eval_options(args.eval_options)
        options['knn'] = dict(options.get('knn') or {}, k=args.k,
                              temperature=args.temperature)
        return build_evaluations(names, options, '--eval')
    except (SweepError, ValueError) as e:
        raise SystemExit(f'knn_eval: error: {e}')


def _report_lines(evaluations: list) -> list:
    """``(label, metric key)`` of every figure to print."""
    lines = []
    for ev in evaluations:
        keys = ev.report[:1] if ev.bn_reestimate else ev.report
        label = ev.label or ev.base_name
        for key in keys:
            text = f'{label} top-{key[3:]}' if key.startswith('top') \
                else f'{label} {key}'
            if ev.bn_reestimate:
                text += ' after BN re-estimation'
            lines.append((text, f'{ev.name}_{key}'))
    return lines + [('own classifier top-1', 'cls_top1')]


def main(argv: Optional[List[str]] = None) -> dict:
    """Print the figures; return the trained metrics of the first
    evaluation (kNN by default: ``top1``, ``top5``)."""
    args = parse_args(argv)
    from decssl_mm.evaluation import EvalConfigError, evaluate_checkpoint
    from decssl_mm.utils.tool_config import load_tool_config

    cfg = load_tool_config(args.config, args.cfg_options)
    evaluations = _evaluations(args)
    seed = args.seed if args.seed is not None else \
        int((cfg.get('randomness') or {}).get('seed') or 0)
    try:
        result = evaluate_checkpoint(
            cfg, args.checkpoint, cluster=args.cluster, evals=evaluations,
            references=not args.no_references, seed=seed)
    except EvalConfigError as e:
        raise SystemExit(f'knn_eval: error: {e}')
    metrics, info = dict(result['metrics']), result['info']
    first = evaluations[0]
    trained = {k[len(first.name) + 1:]: v for k, v in metrics.items()
               if k.startswith(f'{first.name}_')
               and not k.startswith(f'{first.name}_bnre_')}
    for name, ref in result['references'].items():
        metrics.update({f'{k}_{name}': v for k, v in ref.items()})
    where = f" (cluster {info['cluster']})" if info['cluster'] >= 0 else ''
    print(f'{first.describe()} on {args.checkpoint}{where}, '
          f"round {info['round']}: " +
          ', '.join(f'{k} {v:.2f}' if v is not None else f'{k} n/a'
                    for k, v in trained.items()))
    print(f"  {info['num_train']} bank / {info['num_test']} query images; "
          f'untrained references seeded with {seed}:')
    for name, key in _report_lines(evaluations):
        if key in metrics:
            print('  ' + _line(name, metrics, key))
    return trained


if __name__ == '__main__':
    main()
