"""Trained figures beside the untrained references, and the Q1 verdicts.

    python tools/analysis/margins.py RESULTS.jsonl [...] \
        [--goal-knn 10] [--goal-linear 5] [--group-by partition]
    python tools/analysis/margins.py RESULTS.jsonl [...] --verdicts \
        [--ssl-method Dec-SSL/SimCLR] [--sl-method Dec-SL]

Without ``--verdicts``: one markdown table per metric (kNN top-1,
linear-probe top-1): per method, the trained mean ± sd over seeds, the
better of the two untrained references (model init, PyTorch default init;
same seed, same protocol), the margin and whether its mean reaches the
goal.

With ``--verdicts``: the verdict rule of Q1 (:mod:`decssl_mm.study.verdicts`)
for each non-IID split, three comparisons: Dec-SSL's linear probe against
Dec-SL's own classifier and against the linear probe of Dec-SL's backbone
(Dec-SLRep), and Dec-SSL's kNN against Dec-SLRep's kNN; each preceded by
the margin table of the figures it uses.
"""
import argparse
import sys

from decssl_mm.study.margins import margin_rows, margin_table
from decssl_mm.study.results import iter_records
from decssl_mm.study.verdicts import Series, q1_verdicts, verdict_table


def verdict_report(records, ssl_method: str, sl_method: str,
                   iid: str = 'iid') -> str:
    """Markdown: per comparison, its margin tables and verdict table."""
    comparisons = [
        (Series(ssl_method, ssl_method, 'linear_top1'),
         Series('Dec-SL', sl_method, 'cls_top1')),
        (Series(ssl_method, ssl_method, 'linear_top1'),
         Series('Dec-SLRep', sl_method, 'linear_top1')),
        (Series(ssl_method, ssl_method, 'knn_top1'),
         Series('Dec-SLRep', sl_method, 'knn_top1')),
    ]
    out = []
    for ssl, sl in comparisons:
        out.append(f'### {ssl.label} {ssl.metric} vs {sl.label} '
                   f'{sl.metric}\n')
        for series in (ssl, sl):
            rows = [r for r in margin_rows(records, series.metric)
                    if r.method.split(' ')[0] == series.method]
            out.append(margin_table(rows, 0.0))
        out.append(verdict_table(q1_verdicts(records, ssl, sl, iid)))
    return '\n'.join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', nargs='+', help='results files (JSONL)')
    parser.add_argument('--goal-knn', type=float, default=10.0)
    parser.add_argument('--goal-linear', type=float, default=5.0)
    parser.add_argument('--group-by', nargs='*', default=['partition'],
                        help='record fields that split a method into rows')
    parser.add_argument('--verdicts', action='store_true',
                        help='print the Q1 verdict tables instead')
    parser.add_argument('--ssl-method', default='Dec-SSL/SimCLR')
    parser.add_argument('--sl-method', default='Dec-SL')
    parser.add_argument('--iid', default='iid',
                        help='name of the IID split (default iid)')
    args = parser.parse_args(argv)
    records = [rec for path in args.results
               for _, rec in iter_records(path)]
    if args.verdicts:
        print(verdict_report(records, args.ssl_method, args.sl_method,
                             args.iid))
        return 0
    for metric, goal in (('knn_top1', args.goal_knn),
                         ('linear_top1', args.goal_linear)):
        print(margin_table(margin_rows(records, metric, args.group_by),
                           goal))
    return 0


if __name__ == '__main__':
    sys.exit(main())
