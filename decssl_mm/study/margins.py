"""How far trained models stand above their untrained references.

A calibration question ("is this size large enough for learning to show?")
asks, per method, for the trained figure minus the better of the two
untrained references (the model's own initialisation, PyTorch's default
initialisation; :mod:`decssl_mm.evaluation.untrained`), seed by seed, then
its mean and spread over seeds.
"""
import statistics
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = ['MarginRow', 'seed_margin', 'margin_rows', 'margin_table']

REFERENCES = ('untrained_init', 'untrained_default')


class MarginRow:
    """One method's figures over its seeds.

    Args:
        method (str): The group's name (method and grid values).
        metric (str): The metric, e.g. ``'knn_top1'``.
        values (list[float]): The trained figure of every seed.
        margins (list[float]): Trained minus the better untrained reference,
            seed by seed (same seed's references).
        best_refs (list[float]): The better reference of every seed.
        train_s (list[float]): Training seconds of every seed.
    """

    def __init__(self, method: str, metric: str, values: List[float],
                 margins: List[float], best_refs: List[float],
                 train_s: List[float]) -> None:
        self.method = method
        self.metric = metric
        self.values = values
        self.margins = margins
        self.best_refs = best_refs
        self.train_s = train_s

    @staticmethod
    def _mean_sd(xs: Sequence[float]) -> str:
        if not xs:
            return 'n/a'
        if len(xs) == 1:  # one seed: no spread to show
            return f'{xs[0]:.1f} ± ?'
        return f'{statistics.fmean(xs):.1f} ± {statistics.stdev(xs):.1f}'

    def cells(self) -> List[str]:
        """Markdown cells: method, n, trained, reference, margin, time."""
        t = (f'{statistics.fmean(self.train_s):.0f}'
             if self.train_s else 'n/a')
        return [self.method, str(len(self.values)),
                self._mean_sd(self.values), self._mean_sd(self.best_refs),
                self._mean_sd(self.margins), t]

    def reaches(self, goal: float) -> bool:
        """Whether the mean margin is at least ``goal`` points."""
        return bool(self.margins) and statistics.fmean(self.margins) >= goal


def seed_margin(record: dict,
                metric: str) -> Optional[Tuple[float, float, float]]:
    """``(trained, better reference, margin)`` of one record, or None when
    the record lacks the metric or a reference."""
    value = (record.get('metrics') or {}).get(metric)
    refs = record.get('references') or {}
    ref_values = [(refs.get(name) or {}).get(metric) for name in REFERENCES]
    if not isinstance(value, (int, float)) or not all(
            isinstance(v, (int, float)) for v in ref_values):
        return None
    best = max(ref_values)
    return float(value), float(best), float(value) - float(best)


def _group_name(record: dict, group_by: Sequence[str]) -> str:
    fields = record.get('fields') or {}
    parts = [str(record.get('method'))]
    parts += [f'{k}={fields[k]}' for k in group_by if k in fields]
    return ' '.join(parts)


def margin_rows(records: Iterable[dict],
                metric: str,
                group_by: Sequence[str] = ('partition', )
                ) -> List[MarginRow]:
    """One :class:`MarginRow` per method (and ``group_by`` field values),
    from the ``ok`` records that carry the metric and both references; the
    last record of a ``train_key`` wins (a re-evaluation)."""
    latest: Dict[str, dict] = {}
    for rec in records:
        if rec.get('status') == 'ok':
            latest[rec.get('train_key') or rec.get('key')] = rec
    groups: Dict[str, MarginRow] = {}
    for rec in latest.values():
        m = seed_margin(rec, metric)
        if m is None:
            continue
        name = _group_name(rec, group_by)
        row = groups.setdefault(name, MarginRow(name, metric, [], [], [], []))
        row.values.append(m[0])
        row.best_refs.append(m[1])
        row.margins.append(m[2])
        if isinstance(rec.get('train_time_s'), (int, float)):
            row.train_s.append(float(rec['train_time_s']))
    return [groups[k] for k in sorted(groups)]


def margin_table(rows: Sequence[MarginRow], goal: float) -> str:
    """A markdown table of ``rows`` with a last column saying whether the
    mean margin reaches ``goal`` points."""
    if not rows:
        return '(no record with the metric and both references)\n'
    metric = rows[0].metric
    head = ['method', 'n', f'{metric} trained', 'better untrained',
            'margin (mean ± sd over seeds)', 'train s/run',
            f'margin >= {goal:g}']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for row in rows:
        cells = row.cells() + ['yes' if row.reaches(goal) else 'no']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
