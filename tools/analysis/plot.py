"""Plots and markdown tables from the results file of ``sweep.py``.

    python tools/analysis/plot.py work_dirs/study/q1/results.jsonl \
        --plot heterogeneity --out-dir work_dirs/study/plots --table

Each ``ok`` line of the results file(s) becomes one or two data points:
``(series, x, seed, value)``. The value is ``--metric`` (default
``linear_top1``). The series is the record's ``--series`` field (default
``method``, the sweep's variant name); a classifier record (one with
``cls_top1``, e.g. Dec-SL) gives two series: ``--head-label`` (default
``{method}``) with the accuracy of its own classifier, and ``--rep-label``
(default ``{method}Rep``) with ``--metric`` on its frozen backbone (the
Dec-SL and Dec-SLRep numbers). Points of one series and x are averaged over
seeds; error bars are the standard deviation over seeds (``ddof=1``; none
with one seed).

Presets (``--plot``):

- ``heterogeneity``: line plot of accuracy vs the client partition
  (``x=partition``: ``iid``, ``dir1``, ``dir0.1``, ... from IID to most
  skewed). Records with ``num_clients == 1`` (centralized baselines) or
  ``no_train`` (random initialisation, ``sweep.py --no-train``) are drawn
  as horizontal reference lines with a +-std band (also in the other line
  presets; ``--reference`` changes the rule).
- ``communication``: accuracy vs local epochs per round (log x; the study
  keeps rounds x local epochs fixed).
- ``participation``: accuracy vs the fraction of clients per round.
- ``featarc``: bar chart, ``x=algorithm``, one bar per ``aggregation``
  (FedAvg vs FeatARC).
- ``line`` / ``bar``: generic, with ``--x`` (and ``--series``).

Fields (for ``--x``, ``--series``, ``--filter``) are looked up in the
record's ``fields`` (derived from the merged config: method, seed,
algorithm, aggregation, partition, num_clients, rounds, local_epochs,
participation, ... and every override key), then its ``grid`` (axis values
as typed, e.g. for a zipped axis), then the record itself.

Untrained references: a record with ``references`` (the metrics of the same
network untrained, written by the sweep: ``untrained_init``, the model's own
initialisation, and ``untrained_default``, PyTorch's default one) also gives
the series ``<series> (untrained: model init)`` / ``<series> (untrained:
default init)``: horizontal reference
lines (and reference table rows) in line plots, bars in bar plots, rows in
the flat table. ``--untrained`` picks which (default ``both``).

``--table`` prints a markdown table (mean +- std over seeds, n) per plot,
rows = series, columns = x values; without ``--plot``, one table of every
method x metric.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from decssl_mm.study.results import (iter_records,  # noqa: E402
                                     mixed_code_versions, top1_keys)
from decssl_mm.utils.partition_names import \
    heterogeneity_rank  # noqa: E402,F401

METRIC_LABELS = {
    'linear_top1': 'linear probe top-1 (%)',
    'linear_top5': 'linear probe top-5 (%)',
    'knn_top1': 'kNN top-1 (%)',
    'knn_top5': 'kNN top-5 (%)',
    'cls_top1': 'own classifier top-1 (%)',
}


def metric_label(metric: str) -> str:
    """Axis label of a metric: :data:`METRIC_LABELS`, else
    ``<evaluation> top-k (%)`` for ``<evaluation>_top<k>`` of any
    registered evaluation (e.g. ``ncm_top1``), else the metric."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    name, sep, tail = metric.rpartition('_top')
    if sep and name and tail.isdigit():
        return f'{name} top-{tail} (%)'
    return metric
# Records drawn as horizontal reference lines: centralized, untrained.
REFERENCE = 'num_clients=1,no_train=True'
PRESETS = {
    'heterogeneity': dict(
        kind='line', x='partition', series='method',
        title='Accuracy vs data heterogeneity',
        xlabel='client partition (left: IID, right: most skewed)',
        reference=REFERENCE),
    'communication': dict(
        kind='line', x='local_epochs', series='method', logx=True,
        title='Accuracy vs local epochs per round (fixed total epochs)',
        xlabel='local epochs per round (fewer rounds to the right)',
        reference=REFERENCE),
    'participation': dict(
        kind='line', x='participation', series='method',
        title='Accuracy vs client participation',
        xlabel='fraction of clients per round', reference=REFERENCE),
    'featarc': dict(
        kind='bar', x='algorithm', series='aggregation',
        title='FeatARC vs FedAvg', xlabel='algorithm', reference=None),
    'line': dict(kind='line', title=None, xlabel=None,
                 reference=REFERENCE),
    'bar': dict(kind='bar', title=None, xlabel=None, reference=None),
}
Row = Tuple[str, Any, Any, float]  # series, x, seed, value
# --untrained choice -> (name in a record's references, series label)
UNTRAINED = OrderedDict([
    ('init', ('untrained_init', 'untrained: model init')),
    ('default', ('untrained_default', 'untrained: default init')),
])


def reference_metric(rec: dict, name: str, metric: str) -> Any:
    """``metric`` of the untrained reference ``name`` of a record."""
    return ((rec.get('references') or {}).get(name) or {}).get(metric)


class PlotError(ValueError):
    """A user error (the message names the argument or file)."""


# ---------------------------------------------------------------- loading
def load_records(paths: Sequence[str]) -> List[dict]:
    """``ok`` records of results files; the last line of a key wins.

    Raises:
        PlotError: If a file is missing.
    """
    by_key: 'OrderedDict[str, dict]' = OrderedDict()
    for path in paths:
        if not osp.isfile(path):
            raise PlotError(f'results file not found: {path}')
        for line in mixed_code_versions(path):
            print(line, file=sys.stderr)
        for n, rec in iter_records(path):
            by_key[rec.get('key') or f'{path}:{n}'] = rec
    return [r for r in by_key.values() if r.get('status', 'ok') == 'ok']


def lookup(rec: dict, key: str, default: Any = None) -> Any:
    """A field of a record: derived fields (typed values), then the grid
    (axis values as typed on the command line), then the top level."""
    for src in (rec.get('fields') or {}, rec.get('grid') or {}, rec):
        if key in src:
            return src[key]
    return default


def _matches(value: Any, wanted: str) -> bool:
    if str(value) == wanted:
        return True
    try:
        return float(value) == float(wanted)
    except (TypeError, ValueError):
        return False


def parse_filters(items: Sequence[str]) -> List[Tuple[str, str]]:
    """``KEY=VALUE`` filters (several: all must hold)."""
    out = []
    for item in items or ():
        if '=' not in item:
            raise PlotError(f'--filter {item!r}: expected KEY=VALUE')
        k, v = item.split('=', 1)
        out.append((k.strip(), v.strip()))
    return out


def select(records: Iterable[dict],
           filters: Sequence[Tuple[str, str]]) -> List[dict]:
    """Records for which every filter holds."""
    return [r for r in records
            if all(_matches(lookup(r, k), v) for k, v in filters)]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(
        value, bool) and math.isfinite(value)


def to_rows(records: Iterable[dict], x: Optional[str], series: str,
            metric: str, head_label: str = '{method}',
            rep_label: str = '{method}Rep') -> Tuple[List[Row], int]:
    """Data points of the records (see the module docstring).

    Returns:
        tuple: ``(rows, skipped)``; skipped counts records without a finite
        metric.
    """
    rows: List[Row] = []
    skipped = 0
    for rec in records:
        metrics = rec.get('metrics') or {}
        name = str(lookup(rec, series, 'unknown'))
        xv = lookup(rec, x) if x else None
        seed = rec.get('seed')
        head = metrics.get('cls_top1')
        value = metrics.get(metric)
        if _finite(head) and not metric.startswith('cls_'):
            rows.append((head_label.format(method=name), xv, seed,
                         float(head)))
            name = rep_label.format(method=name)
        if _finite(value):
            rows.append((name, xv, seed, float(value)))
        elif not _finite(head):
            skipped += 1
    return rows, skipped


def untrained_rows(records: Iterable[dict], x: Optional[str], series: str,
                   metric: str, which: str = 'both',
                   rep_label: str = '{method}Rep') -> List[Row]:
    """Data points of the untrained references of the records.

    Args:
        records (Iterable[dict]): Results records.
        x (str, optional): Field on the x axis (None: reference lines).
        series (str): Field naming the series.
        metric (str): The plotted metric.
        which (str): ``'init'``, ``'default'``, ``'both'`` or ``'none'``.
        rep_label (str): Series name of a classifier's backbone metric.

    Returns:
        list: Rows named ``<series> (untrained: ...)``.
    """
    kinds = [] if which == 'none' else list(UNTRAINED) if which == 'both' \
        else [which]
    rows: List[Row] = []
    for rec in records:
        metrics = rec.get('metrics') or {}
        name = str(lookup(rec, series, 'unknown'))
        if _finite(metrics.get('cls_top1')) and not metric.startswith('cls_'):
            name = rep_label.format(method=name)
        for kind in kinds:
            ref, label = UNTRAINED[kind]
            value = reference_metric(rec, ref, metric)
            if _finite(value):
                rows.append((f'{name} ({label})', lookup(rec, x) if x else
                             None, rec.get('seed'), float(value)))
    return rows


# ------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> Tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value), count."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0, n
    var = sum((v - mean)**2 for v in values) / (n - 1)
    return mean, math.sqrt(var), n


def group(rows: Iterable[Row]
          ) -> 'OrderedDict[str, OrderedDict[Any, Tuple[float, float, int]]]':
    """``{series: {x: (mean, std, n)}}``; one value per seed (the mean if a
    seed appears twice)."""
    acc: 'OrderedDict[str, OrderedDict[Any, Dict[Any, List[float]]]]' = \
        OrderedDict()
    for s, x, seed, v in rows:
        acc.setdefault(s, OrderedDict()).setdefault(_hashable(x), {}) \
            .setdefault(seed, []).append(v)
    out: 'OrderedDict' = OrderedDict()
    for s, xs in acc.items():
        out[s] = OrderedDict(
            (x, mean_std([sum(v) / len(v) for v in seeds.values()]))
            for x, seeds in xs.items())
    return out


def reference_stat(ref_rows: Sequence[Row], name: str
                   ) -> Tuple[float, float, int]:
    """Mean, std and count over seeds of a reference series (one value
    per seed: the mean of its rows, e.g. of one untrained network evaluated
    beside several grid points)."""
    seeds: 'OrderedDict[Any, List[float]]' = OrderedDict()
    for s, _, seed, v in ref_rows:
        if s == name:
            seeds.setdefault(seed, []).append(v)
    return mean_std([sum(v) / len(v) for v in seeds.values()])


def _hashable(x: Any) -> Any:
    if isinstance(x, (dict, list)):
        return json.dumps(x, sort_keys=True)
    return x


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def order_x(values: Iterable[Any], x: Optional[str]) -> List[Any]:
    """Numbers ascending; partition labels IID -> skewed; else as given."""
    vals = list(OrderedDict((v, None) for v in values))
    if all(_is_number(v) for v in vals):
        return sorted(vals)
    if any(heterogeneity_rank(v)[0] < 3 for v in vals):
        return sorted(vals, key=heterogeneity_rank)
    return vals


# ------------------------------------------------------------------ plots
def _fmt_x(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return 'n/a' if x is None else str(x)




def plot_line(rows: List[Row], ref_rows: List[Row], out: str, title: str,
              xlabel: str, ylabel: str, logx: bool = False) -> None:
    """Accuracy vs x, one line per series, std error bars; reference
    series as horizontal lines with a +-std band."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    stats = group(rows)
    xs_all = order_x([x for s in stats.values() for x in s], None)
    numeric = all(_is_number(x) for x in xs_all)
    pos = {x: (x if numeric else i) for i, x in enumerate(xs_all)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, by_x in stats.items():
        xs = [x for x in xs_all if x in by_x]
        ax.errorbar([pos[x] for x in xs], [by_x[x][0] for x in xs],
                    yerr=[by_x[x][1] for x in xs], marker='o', capsize=3,
                    label=name)
    for i, name in enumerate(group(ref_rows)):
        mean, std, n = reference_stat(ref_rows, name)
        color = f'C{(len(stats) + i) % 10}'
        ax.axhline(mean, ls='--', color=color, label=f'{name} (n={n})')
        if std > 0:
            ax.axhspan(mean - std, mean + std, color=color, alpha=0.15)
    if not numeric:
        ax.set_xticks(list(range(len(xs_all))))
        ax.set_xticklabels([_fmt_x(x) for x in xs_all])
    elif logx and xs_all and all(x > 0 for x in xs_all):
        ax.set_xscale('log', base=2)
        ax.set_xticks(xs_all)
        ax.set_xticklabels([_fmt_x(x) for x in xs_all])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if stats or ref_rows:
        ax.legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_bar(rows: List[Row], out: str, title: str, xlabel: str,
             ylabel: str) -> None:
    """Grouped bars: groups along x, one bar per series, std error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    stats = group(rows)
    xs_all = order_x([x for s in stats.values() for x in s], None)
    n = max(len(stats), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for i, (name, by_x) in enumerate(stats.items()):
        idx = [j for j, x in enumerate(xs_all) if x in by_x]
        bars = ax.bar([j - 0.4 + width * (i + 0.5) for j in idx],
                      [by_x[xs_all[j]][0] for j in idx], width,
                      yerr=[by_x[xs_all[j]][1] for j in idx], capsize=3,
                      label=name)
        ax.bar_label(bars, fmt='%.1f', fontsize='small', padding=2)
    ax.set_xticks(list(range(len(xs_all))))
    ax.set_xticklabels([_fmt_x(x) for x in xs_all])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis='y', alpha=0.3)
    if stats:
        ax.legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


# ----------------------------------------------------------------- tables
def fmt_stat(stat: Optional[Tuple[float, float, int]],
             digits: int = 1) -> str:
    """``77.2 ± 0.4 (n=3)``; ``77.2 (n=1)``; ``–`` when missing."""
    if stat is None:
        return '–'
    mean, std, n = stat
    if n < 2:
        return f'{mean:.{digits}f} (n=1)'
    return f'{mean:.{digits}f} ± {std:.{digits}f} (n={n})'


def pivot_table(rows: List[Row], ref_rows: List[Row], x: str,
                digits: int = 1) -> str:
    """Markdown table: rows = series, columns = x values; a reference row
    (no x) gives its value in the first column and ditto marks after."""
    stats = group(rows)
    xs_all = order_x([v for s in stats.values() for v in s], None)
    head = [f'method \\ {x}'] + [_fmt_x(v) for v in xs_all]
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for name, by_x in stats.items():
        cells = [fmt_stat(by_x.get(v), digits) for v in xs_all]
        lines.append('| ' + ' | '.join([name] + cells) + ' |')
    for name in group(ref_rows):
        cell = fmt_stat(reference_stat(ref_rows, name), digits)
        # one value for every column: written once, then ditto marks
        lines.append('| ' + ' | '.join(
            [f'{name} (reference)', cell] + ['″'] *
            (len(xs_all) - 1)) + ' |')
    return '\n'.join(lines)


def metric_table(records: List[dict], series: str,
                 metrics: Optional[Sequence[str]] = None,
                 digits: int = 1, which: str = 'both') -> str:
    """Markdown table: rows = series, columns = metrics (default: the
    top-1 of every evaluation the records ran, ``cls_top1`` last); the
    untrained references (``which``) as rows ``<series> (untrained:
    ...)``."""
    if metrics is None:
        keys = [k for rec in records for k in top1_keys(rec)]
        metrics = [k for i, k in enumerate(keys)
                   if k != 'cls_top1' and k not in keys[:i]] + ['cls_top1']
    per: 'OrderedDict[str, Dict[str, List[float]]]' = OrderedDict()
    for rec in records:
        name = str(lookup(rec, series, 'unknown'))
        m = rec.get('metrics') or {}
        for k in metrics:
            if _finite(m.get(k)):
                per.setdefault(name, {}).setdefault(k, []).append(
                    float(m[k]))
            else:
                per.setdefault(name, {})
        for kind, (ref, label) in UNTRAINED.items():
            if which not in ('both', kind):
                continue
            for k in metrics:
                value = reference_metric(rec, ref, k)
                if _finite(value):
                    per.setdefault(f'{name} ({label})', {}).setdefault(
                        k, []).append(float(value))
    lines = ['| method | ' + ' | '.join(metrics) + ' |',
             '|---|' + '---|' * len(metrics)]
    for name, vals in per.items():
        cells = [fmt_stat(mean_std(vals[k]) if vals.get(k) else None,
                          digits) for k in metrics]
        lines.append('| ' + ' | '.join([name] + cells) + ' |')
    return '\n'.join(lines)


# ------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(
        description='PNG plots and markdown tables from sweep results.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    p.add_argument('results', nargs='+', help='results file(s) (JSON lines '
                   'of tools/analysis/sweep.py)')
    p.add_argument('--plot', nargs='+', action='extend', default=[],
                   choices=list(PRESETS),
                   help='plots to draw (presets or generic line/bar)')
    p.add_argument('--out-dir', default='.', help='folder of the PNGs')
    p.add_argument('--name', help='PNG file name (one plot only); default '
                   '<plot>.png')
    p.add_argument('--x', help='field on the x axis (overrides the preset)')
    p.add_argument('--series', help='field naming the series (default: '
                   'the preset\'s, else method)')
    p.add_argument('--metric', default='linear_top1',
                   help='metric to plot: linear_top1 (default), knn_top1, '
                   'cls_top1, linear_top5, knn_top5, or <name>_top<k> of '
                   'any evaluation the records ran (e.g. ncm_top1)')
    p.add_argument('--filter', nargs='+', action='extend', default=[],
                   metavar='KEY=VALUE',
                   help='keep only records whose field equals the value')
    p.add_argument('--reference', default='preset', help='KEY=VALUE[,K=V]: '
                   'records matching any of them are drawn as horizontal '
                   "reference lines in line plots (default: the preset's "
                   'num_clients=1,no_train=True, i.e. centralized and '
                   "random-init runs; 'none' to disable)")
    p.add_argument('--head-label', default='{method}',
                   help='series name of a classifier\'s own head accuracy')
    p.add_argument('--rep-label', default='{method}Rep',
                   help='series name of the probe on a classifier\'s '
                   'frozen backbone')
    p.add_argument('--drop-series', nargs='+', action='extend', default=[],
                   metavar='NAME',
                   help='series (or reference lines) to leave out, by name '
                   'as in the legend, e.g. Dec-SL Init/Dec-SL (a '
                   "classifier's head series) to unclutter a probe plot")
    p.add_argument('--untrained', default='both',
                   choices=['both', 'init', 'default', 'none'],
                   help='untrained references to show (records with '
                   'references): the model\'s own '
                   'initialisation, PyTorch\'s default one, both (default) '
                   'or none')
    p.add_argument('--title', help='plot title (overrides the preset)')
    p.add_argument('--table', action='store_true',
                   help='print markdown tables (mean ± std over seeds)')
    p.add_argument('--table-out', help='also write the tables to this file')
    p.add_argument('--digits', type=int, default=1,
                   help='decimals in tables (default 1)')
    args = p.parse_args(argv)
    if args.name and len(args.plot) != 1:
        p.error('--name needs exactly one --plot')
    for plot in args.plot:
        if plot in ('line', 'bar') and not args.x:
            p.error(f'--plot {plot} needs --x')
    return args


def _reference_filter(args: argparse.Namespace,
                      preset: dict) -> List[Tuple[str, str]]:
    ref = preset.get('reference') if args.reference == 'preset' \
        else args.reference
    if not ref or ref == 'none':
        return []
    out = []
    for item in ref.split(','):
        if '=' not in item:
            raise PlotError(f'--reference {ref!r}: expected KEY=VALUE[,'
                            'KEY=VALUE] or none')
        k, v = item.split('=', 1)
        out.append((k.strip(), v.strip()))
    return out


def make_plot(records: List[dict], plot: str,
              args: argparse.Namespace) -> Tuple[str, str]:
    """Draw one plot; return ``(png path, markdown table)``."""
    preset = PRESETS[plot]
    x = args.x or preset.get('x')
    series = args.series or preset.get('series') or 'method'
    refs = _reference_filter(args, preset) if preset['kind'] == 'line' \
        else []
    main_recs = [r for r in records
                 if not any(_matches(lookup(r, k), v) for k, v in refs)]
    ref_recs = [r for r in records if r not in main_recs]
    rows, skipped = to_rows(main_recs, x, series, args.metric,
                            args.head_label, args.rep_label)
    ref_rows, skipped_ref = to_rows(ref_recs, None, series, args.metric,
                                    args.head_label, args.rep_label)
    if preset['kind'] == 'line':
        ref_rows += untrained_rows(main_recs, None, series, args.metric,
                                   args.untrained, args.rep_label)
    else:
        rows += untrained_rows(main_recs, x, series, args.metric,
                               args.untrained, args.rep_label)
    drop = set(args.drop_series)
    names = {r[0] for r in rows + ref_rows}
    if drop - names:
        raise PlotError(
            f'--drop-series: no series named {", ".join(sorted(drop - names))}'
            f' in --plot {plot} (series: {", ".join(sorted(names))})')
    rows = [r for r in rows if r[0] not in drop]
    ref_rows = [r for r in ref_rows if r[0] not in drop]
    if skipped + skipped_ref:
        print(f'warning: {plot}: {skipped + skipped_ref} records without a '
              f'finite {args.metric} skipped', file=sys.stderr)
    missing = sum(1 for r in rows if r[1] is None)
    if missing:
        print(f'warning: {plot}: {missing} points have no field {x!r}',
              file=sys.stderr)
    if not rows and not ref_rows:
        raise PlotError(f'--plot {plot}: no record has a finite '
                        f'{args.metric!r} (after --filter and '
                        '--drop-series)')
    os.makedirs(args.out_dir, exist_ok=True)
    out = osp.join(args.out_dir, args.name or f'{plot}.png')
    ylabel = metric_label(args.metric)
    title = args.title or preset.get('title') or ''
    xlabel = preset.get('xlabel') or x
    if preset['kind'] == 'line':
        plot_line(rows, ref_rows, out, title, xlabel, ylabel,
                  preset.get('logx', False))
    else:
        plot_bar(rows + ref_rows, out, title, xlabel, ylabel)
    table = pivot_table(rows, ref_rows, x, args.digits)
    return out, table


def main(argv: Optional[List[str]] = None) -> Dict[str, str]:
    """Draw the plots / print the tables; return ``{plot: png path}``."""
    args = parse_args(argv)
    try:
        records = select(load_records(args.results),
                         parse_filters(args.filter))
        if not records:
            raise PlotError('no ok records in ' + ', '.join(args.results) +
                            (' after --filter' if args.filter else ''))
        written, tables = {}, []
        for plot in args.plot:
            path, table = make_plot(records, plot, args)
            written[plot] = path
            print(f'wrote {path}')
            tables.append(f'### {plot} ({args.metric})\n\n{table}\n')
        if not args.plot:
            tables.append(metric_table(records, args.series or 'method',
                                       digits=args.digits,
                                       which=args.untrained) + '\n')
    except PlotError as e:
        raise SystemExit(f'plot: error: {e}')
    if args.table or args.table_out:
        text = '\n'.join(tables)
        if args.table:
            print(text)
        if args.table_out:
            with open(args.table_out, 'w') as f:
                f.write(text)
    return written


if __name__ == '__main__':
    main()
