"""Trained figures beside the better untrained reference, seed by seed.

    python tools/analysis/margins.py RESULTS.jsonl [...] \
        [--goal-knn 10] [--goal-linear 5] [--group-by partition]

Prints one markdown table per metric (kNN top-1, linear-probe top-1): per
method, the trained mean ± sd over seeds, the better of the two untrained
references (model init, PyTorch default init; same seed, same protocol),
the margin and whether its mean reaches the goal.
"""
import argparse
import sys

from decssl_mm.study.margins import margin_rows, margin_table
from decssl_mm.study.results import iter_records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', nargs='+', help='results files (JSONL)')
    parser.add_argument('--goal-knn', type=float, default=10.0)
    parser.add_argument('--goal-linear', type=float, default=5.0)
    parser.add_argument('--group-by', nargs='*', default=['partition'],
                        help='record fields that split a method into rows')
    args = parser.parse_args(argv)
    records = [rec for path in args.results
               for _, rec in iter_records(path)]
    for metric, goal in (('knn_top1', args.goal_knn),
                         ('linear_top1', args.goal_linear)):
        print(margin_table(margin_rows(records, metric, args.group_by),
                           goal))
    return 0


if __name__ == '__main__':
    sys.exit(main())
