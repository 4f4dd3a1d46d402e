"""The downstream figure: each backbone's detector beside the untrained ones.

One panel per downstream config: for every pretrained backbone a bar of its
fine-tuned metric (mean over fine-tune seeds, error bar: standard deviation
over seeds, each seed a dot), and two bars of the same detector fine-tuned
from the untrained references at the same seeds (``untrained_init``,
``untrained_default``). Drawn from the records alone
(:func:`~decssl_mm.study.downstream.latest_records`).
"""
import os
import os.path as osp
import statistics
from typing import Dict, Iterable, List, Tuple

from .downstream import METRICS, latest_records
from .margins import REFERENCES

#: Bar labels of the untrained references.
REFERENCE_LABELS = {'untrained_init': 'untrained (model init)',
                    'untrained_default': 'untrained (PyTorch default)'}


def figure_series(records: Iterable[dict], metric: str
                  ) -> Dict[str, List[Tuple[str, List[float]]]]:
    """Per config, the bars: ``(label, values over seeds)``; pretrained
    backbones in first-seen order, then the two references (their values at
    the seeds of the config's records, once per seed).

    Raises:
        ValueError: ``metric`` is not a downstream metric.
    """
    if metric not in METRICS:
        raise ValueError(f'metric must be one of {sorted(METRICS)}, got '
                         f'{metric!r}')
    panels: Dict[str, Dict[str, Dict[int, float]]] = {}
    for rec in latest_records(records):
        value = (rec.get('metrics') or {}).get(metric)
        refs = rec.get('references') or {}
        if value is None or any(
                (refs.get(r) or {}).get(metric) is None for r in REFERENCES):
            continue
        name = osp.splitext(osp.basename(rec['config']))[0]
        bars = panels.setdefault(name, {})
        seed = int(rec['seed'])
        bars.setdefault(rec['method'], {})[seed] = float(value)
        for r in REFERENCES:
            bars.setdefault(REFERENCE_LABELS[r], {})[seed] = float(
                refs[r][metric])
    out = {}
    for name, bars in panels.items():
        refs = [REFERENCE_LABELS[r] for r in REFERENCES]
        order = [b for b in bars if b not in refs] + refs
        out[name] = [(b, [bars[b][s] for s in sorted(bars[b])])
                     for b in order]
    return out


def downstream_figure(records: Iterable[dict], out: str,
                      metric: str = 'bbox_AP') -> str:
    """Write the figure of ``metric`` to ``out`` (png); returns ``out``.

    Raises:
        ValueError: No record with ``metric`` and both references.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = figure_series(records, metric)
    if not panels:
        raise ValueError(f'no downstream record with {metric} and both '
                         'untrained references')
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(1.3 + 1.1 * max(
                                 len(b) for b in panels.values()) *
                                 len(panels), 3.6))
    for ax, (name, bars) in zip(axes[0], sorted(panels.items())):
        for i, (label, values) in enumerate(bars):
            ref = label in REFERENCE_LABELS.values()
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            ax.bar(i, statistics.fmean(values), yerr=sd, capsize=4,
                   color='0.75' if ref else 'tab:blue')
            ax.plot([i] * len(values), values, 'k.', ms=4)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([f'{b}\n(n={len(v)})' for b, v in bars],
                           rotation=30, ha='right', fontsize=7)
        ax.set_title(name, fontsize=8)
        ax.set_ylabel(f'{metric} (%)')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
