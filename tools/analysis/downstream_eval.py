"""Downstream evaluation: fine-tune a detector from pretrained backbones and
from both untrained references, over fine-tune seeds; records and table.

    python tools/analysis/downstream_eval.py CONFIG [CONFIG ...]
        --backbone LABEL=CHECKPOINT [--backbone LABEL=CHECKPOINT ...]
        [--seeds 0,1,2] [--out docs/results/downstream_fmnist_det.jsonl]
        [--work-dir work_dirs/downstream] [--max-iters N]
        [--data-root DIR] [--cfg-options k=v ...]
    python tools/analysis/downstream_eval.py --table RECORDS.jsonl
        [--figure OUT.png [--metric bbox_AP]]

CONFIG is a downstream config whose backbone loads an extracted backbone
(``init_cfg=dict(type='Pretrained', prefix='backbone.')``), e.g.
``configs/downstream/fmnist_det/*.py``. CHECKPOINT is a federated /
mmengine checkpoint (its global model's backbone is extracted and checked
against the config) or an extracted backbone. For every seed the detector
is fine-tuned from each backbone and, once per (config, seed), from the
two untrained references (``untrained_init``: the backbone's own
initialisation; ``untrained_default``: PyTorch's default), then evaluated
with the config's ``CocoMetric`` (bbox / segm AP and AP50, percent). One
JSON line per (config, backbone, seed) goes to ``--out``, holding the
references of its seed; references already in that file are reused.
``--table`` prints the verdicts (2-sigma rule over seeds) from a records
file alone (decssl_mm.study.downstream); ``--figure`` draws each
backbone's detector beside the untrained ones
(decssl_mm.study.downstream_figure).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='downstream evaluation beside untrained references')
    parser.add_argument('configs', nargs='*', help='downstream configs')
    parser.add_argument(
        '--backbone', action='append', default=[], metavar='LABEL=CKPT',
        help='a pretrained checkpoint and its name in the records '
        '(repeatable)')
    parser.add_argument('--seeds', default='0,1,2',
                        help='fine-tune seeds, comma-separated')
    parser.add_argument('--out',
                        default='docs/results/downstream_fmnist_det.jsonl',
                        help='records file (JSON lines, appended to)')
    parser.add_argument('--work-dir', default='work_dirs/downstream')
    parser.add_argument('--max-iters', type=int, default=None,
                        help="override the config's iteration budget")
    parser.add_argument('--data-root', default=None,
                        help='dataset folder (warehouse layout)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of every config, key=value')
    parser.add_argument('--table', metavar='RECORDS', default=None,
                        help='print the table of a records file and exit')
    parser.add_argument('--figure', metavar='PNG', default=None,
                        help='with --table: also draw the figure there')
    parser.add_argument('--metric', default='bbox_AP',
                        help='metric of --figure (bbox_AP, bbox_AP50, '
                        'segm_AP, segm_AP50)')
    return parser.parse_args(argv)


def parse_backbones(items: List[str]) -> Dict[str, str]:
    """``['LABEL=PATH', ...]`` -> ``{LABEL: PATH}``.

    Raises:
        ValueError: Naming the entry, for one without ``=``, an empty
            label or a repeated label.
    """
    out: Dict[str, str] = {}
    for item in items:
        label, sep, path = item.partition('=')
        if not sep or not label or not path:
            raise ValueError(f'--backbone {item!r}: expected LABEL=CHECKPOINT')
        if label in out:
            raise ValueError(f'--backbone {item!r}: label {label!r} given '
                             'twice')
        out[label] = path
    return out


def parse_seeds(text: str) -> List[int]:
    try:
        seeds = [int(s) for s in text.split(',') if s.strip()]
    except ValueError:
        raise ValueError(f'--seeds {text!r}: expected integers separated '
                         'by commas') from None
    if not seeds:
        raise ValueError(f'--seeds {text!r}: no seed')
    return seeds


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from decssl_mm.study import downstream
    from decssl_mm.study.results import iter_records
    if args.table:
        if not osp.isfile(args.table):
            print(f'error: records file {args.table} does not exist',
                  file=sys.stderr)
            return 1
        records = [rec for _, rec in iter_records(args.table)]
        print(downstream.downstream_table(records), end='')
        if args.figure:
            from decssl_mm.study.downstream_figure import downstream_figure
            try:
                downstream_figure(records, args.figure, args.metric)
            except ValueError as e:
                print(f'error: --figure: {e}', file=sys.stderr)
                return 1
            print(f'figure: {args.figure}')
        return 0
    try:
        if not args.configs:
            raise ValueError('give at least one downstream CONFIG (or '
                             '--table RECORDS)')
        backbones = parse_backbones(args.backbone)
        if not backbones:
            raise ValueError('give at least one --backbone LABEL=CHECKPOINT')
        seeds = parse_seeds(args.seeds)
        import decssl_mm  # noqa: F401  (registers WarehouseDataset, hooks)
        records = []
        for config in args.configs:
            records += downstream.evaluate_backbones(
                config, backbones, seeds, args.work_dir, out=args.out,
                cfg_options=args.cfg_options, max_iters=args.max_iters,
                data_root=args.data_root)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{len(records)} record(s) appended to {args.out}')
    print(downstream.downstream_table(records), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
