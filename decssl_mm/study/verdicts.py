"""The verdict rule of the study's first question, in code.

Q1 asks whether decentralized self-supervised learning (Dec-SSL) loses less
than decentralized supervised learning (Dec-SL) when the clients' data go
from IID to non-IID. Per method, the *drop* from IID to a non-IID split is
measured seed by seed (same training seed on both splits) and summarised by
its mean and standard deviation over seeds. Then, for each non-IID split:

- a *cell* (one method on one split) whose trained figure does not beat the
  better of its two untrained references (the model's own initialisation,
  PyTorch's default initialisation; same seed, same protocol) by more than
  twice the spread of that margin over seeds is **at random features**: it
  carries no verdict, and neither does any comparison that uses it;
- otherwise, with ``delta = drop(Dec-SL) - drop(Dec-SSL)`` and
  ``sigma = sqrt(sd_SL**2 + sd_SSL**2)`` (the spread of the difference of
  two independent means' seed spreads), Q1 **holds** where
  ``delta > 2 sigma``, **fails** where ``delta < -2 sigma``, and is **not
  resolved at n seeds** otherwise (also whenever fewer than two seeds are
  paired: a spread needs two).

Each comparison names the two figures it uses, e.g. Dec-SSL's linear probe
against Dec-SL's own classifier (``cls_top1``) or against the linear probe
of Dec-SL's backbone (Dec-SLRep).
"""
import math
import statistics
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence

from .margins import REFERENCES

__all__ = [
    'Series', 'Cell', 'Drop', 'Verdict', 'collect_cells', 'cell_status',
    'drop_between', 'q1_verdict', 'q1_verdicts', 'verdict_table'
]

HOLDS, FAILS, UNRESOLVED, AT_RANDOM = ('holds', 'fails', 'not resolved',
                                       'at random features')


class Series(NamedTuple):
    """One method's figure: records of ``method``, read at ``metric``.

    Args:
        label (str): Name in tables, e.g. ``'Dec-SLRep'``.
        method (str): The records' ``method`` field, e.g. ``'Dec-SL'``.
        metric (str): The metric, e.g. ``'linear_top1'``.
    """
    label: str
    method: str
    metric: str


class Cell(NamedTuple):
    """One series on one split: per seed the trained figure and the better
    untrained reference (None where the record has no reference)."""
    series: Series
    partition: str
    values: Dict[int, float]
    best_refs: Dict[int, Optional[float]]

    @property
    def margins(self) -> List[float]:
        """Trained minus the better reference, for the seeds that have
        one."""
        return [self.values[s] - r for s, r in sorted(self.best_refs.items())
                if r is not None]


class Drop(NamedTuple):
    """IID minus non-IID, seed by seed, and its mean and sd."""
    seeds: List[int]
    values: List[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 \
            else math.nan


class Verdict(NamedTuple):
    """Q1 on one non-IID split for one pair of series."""
    partition: str
    ssl: Series
    sl: Series
    ssl_drop: Drop
    sl_drop: Drop
    delta: float
    sigma: float
    verdict: str
    why: str


def _latest_ok(records: Iterable[dict]) -> List[dict]:
    latest: Dict[str, dict] = {}
    for rec in records:
        if rec.get('status') == 'ok' and rec.get('trained', True):
            latest[rec.get('train_key') or rec.get('key')] = rec
    return list(latest.values())


def collect_cells(records: Iterable[dict], series: Series
                  ) -> Dict[str, Cell]:
    """Per partition, the :class:`Cell` of ``series`` (last record of a
    ``train_key`` wins)."""
    cells: Dict[str, Cell] = {}
    for rec in _latest_ok(records):
        if rec.get('method') != series.method:
            continue
        value = (rec.get('metrics') or {}).get(series.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        part = str((rec.get('fields') or {}).get('partition'))
        refs = rec.get('references') or {}
        ref_values = [(refs.get(n) or {}).get(series.metric)
                      for n in REFERENCES]
        ref_values = [float(v) for v in ref_values
                      if isinstance(v, (int, float))]
        cell = cells.setdefault(part, Cell(series, part, {}, {}))
        seed = int(rec.get('seed', 0))
        cell.values[seed] = float(value)
        cell.best_refs[seed] = max(ref_values) if ref_values else None
    return cells


def cell_status(cell: Optional[Cell]) -> Optional[str]:
    """None when ``cell`` stands above its untrained references by more
    than twice the seed spread of its margin; else the reason it does
    not."""
    if cell is None or not cell.values:
        return 'no records'
    margins = cell.margins
    if len(margins) < len(cell.values):
        return 'records without untrained references'
    if len(margins) < 2:
        return f'{len(margins)} seed (a spread needs 2)'
    mean, sd = statistics.fmean(margins), statistics.stdev(margins)
    if mean <= 2 * sd:
        return (f'{AT_RANDOM}: margin {mean:+.1f} <= 2 x {sd:.1f} over '
                f'{len(margins)} seeds')
    return None


def drop_between(iid: Cell, other: Cell) -> Drop:
    """IID minus ``other``, over the seeds both cells have."""
    seeds = sorted(set(iid.values) & set(other.values))
    return Drop(seeds, [iid.values[s] - other.values[s] for s in seeds])


def q1_verdict(iid_ssl: Optional[Cell], ssl: Optional[Cell],
               iid_sl: Optional[Cell], sl: Optional[Cell],
               ssl_series: Series, sl_series: Series,
               partition: str) -> Verdict:
    """The verdict of Q1 on one split (see the module's docstring)."""
    empty = Drop([], [])
    for name, cell in (('Dec-SSL IID', iid_ssl), (f'Dec-SSL {partition}',
                                                  ssl),
                       ('Dec-SL IID', iid_sl), (f'Dec-SL {partition}', sl)):
        status = cell_status(cell)
        if status is not None:
            ssl_drop = drop_between(iid_ssl, ssl) if iid_ssl and ssl \
                else empty
            sl_drop = drop_between(iid_sl, sl) if iid_sl and sl else empty
            kind = AT_RANDOM if status.startswith(AT_RANDOM) else UNRESOLVED
            return Verdict(partition, ssl_series, sl_series, ssl_drop,
                           sl_drop, math.nan, math.nan, kind,
                           f'{name}: {status}')
    ssl_drop, sl_drop = drop_between(iid_ssl, ssl), drop_between(iid_sl, sl)
    n = min(len(ssl_drop.values), len(sl_drop.values))
    if n < 2:
        return Verdict(partition, ssl_series, sl_series, ssl_drop, sl_drop,
                       math.nan, math.nan, UNRESOLVED,
                       f'{n} paired seed(s): a spread needs 2')
    delta = sl_drop.mean - ssl_drop.mean
    sigma = math.sqrt(sl_drop.sd**2 + ssl_drop.sd**2)
    if delta > 2 * sigma:
        verdict = HOLDS
    elif delta < -2 * sigma:
        verdict = FAILS
    else:
        verdict = UNRESOLVED
    why = f'delta {delta:+.1f}, 2 sigma {2 * sigma:.1f}, n = {n}'
    return Verdict(partition, ssl_series, sl_series, ssl_drop, sl_drop,
                   delta, sigma, verdict, why)


def q1_verdicts(records: Sequence[dict], ssl: Series, sl: Series,
                iid: str = 'iid') -> List[Verdict]:
    """One :class:`Verdict` per non-IID split that either series has."""
    ssl_cells = collect_cells(records, ssl)
    sl_cells = collect_cells(records, sl)
    parts = sorted((set(ssl_cells) | set(sl_cells)) - {iid})
    return [
        q1_verdict(ssl_cells.get(iid), ssl_cells.get(p), sl_cells.get(iid),
                   sl_cells.get(p), ssl, sl, p) for p in parts
    ]


def _mean_sd(drop: Drop) -> str:
    if not drop.values:
        return 'n/a'
    sd = f'{drop.sd:.1f}' if len(drop.values) > 1 else '?'
    return f'{drop.mean:.1f} ± {sd}'


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    """A markdown table of ``verdicts``."""
    if not verdicts:
        return '(no non-IID split with records)\n'
    head = ['split', 'Dec-SSL figure', 'drop (mean ± sd)', 'Dec-SL figure',
            'drop (mean ± sd)', 'Dec-SL - Dec-SSL', 'verdict', 'why']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for v in verdicts:
        delta = 'n/a' if math.isnan(v.delta) else \
            f'{v.delta:+.1f} (2σ {2 * v.sigma:.1f})'
        cells = [
            v.partition, f'{v.ssl.label} {v.ssl.metric}',
            _mean_sd(v.ssl_drop), f'{v.sl.label} {v.sl.metric}',
            _mean_sd(v.sl_drop), delta, f'**{v.verdict}**', v.why
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
