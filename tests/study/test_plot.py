"""tools/analysis/plot.py on a small handmade results file."""
import json
import os.path as osp

import pytest

from ._sweep_module import load_tool

plot = load_tool('plot')


def _rec(method, seed, value, cls=None, **fields):
    metrics = {'linear_top1': value, 'knn_top1': value - 5}
    if cls is not None:
        metrics['cls_top1'] = cls
    grid = {k: fields.pop(k) for k in list(fields) if k.startswith('g_')}
    grid = {k[2:]: v for k, v in grid.items()}
    fields.update(method=method, seed=seed)
    return dict(key=f'{method}-{seed}-{json.dumps(grid)}-{fields}',
                status='ok', method=method, seed=seed, grid=grid,
                fields=fields, metrics=metrics)


def _write(path, records):
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
        f.write('{"broken line\n')  # a damaged last line is skipped


@pytest.fixture
def results(tmp_path):
    recs = []
    for seed in (0, 1):
        for i, part in enumerate(['dir0.02', 'iid', 'dir1', 'dir0.1']):
            for method, base in (('SimCLR', 80), ('SimSiam', 75)):
                recs.append(_rec(method, seed, base - 3 * i + seed,
                                 g_partition=part, num_clients=10))
            recs.append(_rec('Dec-SL', seed, 70 - i, cls=85 - 5 * i,
                             g_partition=part, num_clients=10))
        recs.append(_rec('Central SimCLR', seed, 82 + seed,
                         partition='iid', num_clients=1))
        recs.append(_rec('Init', seed, 30 + seed, partition='dir0.1',
                         num_clients=10, no_train=True))
        for le in (1, 5, 25, 50):
            recs.append(_rec('SimCLR', seed, 70 + le / 10, local_epochs=le,
                             num_clients=10, g_q='q2'))
        for frac in (1.0, 0.5, 0.2, 0.1):
            recs.append(_rec('SimCLR', seed, 60 + 10 * frac,
                             participation=frac, num_clients=20, g_q='q3'))
        for algo in ('SimCLR', 'SimSiam'):
            for agg, bonus in (('FedAvg', 0), ('FeatARC', 2)):
                recs.append(_rec(f'{agg}/{algo}', seed, 60 + bonus + seed,
                                 algorithm=algo, aggregation=agg,
                                 num_clients=10, g_q='q4'))
    recs.append(dict(key='failed', status='failed', method='SimCLR'))
    path = tmp_path / 'results.jsonl'
    _write(path, recs)
    return str(path)


def test_presets_write_pngs_and_tables(results, tmp_path, capsys):
    out = tmp_path / 'plots'
    table_file = tmp_path / 'tables.md'
    written = {}
    written.update(plot.main([results, '--plot', 'heterogeneity',
                              '--filter', 'q=None', '--out-dir', str(out),
                              '--table', '--table-out', str(table_file)]))
    tables = capsys.readouterr().out
    written.update(plot.main([results, '--plot', 'communication',
                              '--filter', 'q=q2', '--out-dir', str(out)]))
    written.update(plot.main([results, '--plot', 'participation',
                              '--filter', 'q=q3', '--out-dir', str(out)]))
    written.update(plot.main([results, '--plot', 'featarc', '--filter',
                              'q=q4', '--out-dir', str(out), '--table']))
    assert sorted(written) == ['communication', 'featarc', 'heterogeneity',
                               'participation']
    for path in written.values():
        assert osp.isfile(path) and osp.getsize(path) > 1000, path
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # Dec-SL gives its own-head series and the probe series (Dec-SLRep);
    # the centralized run is a reference row; columns go IID -> skewed
    assert '| Dec-SL | 80.0 ± 0.0 (n=2) | 75.0 ± 0.0 (n=2) | ' \
        '70.0 ± 0.0 (n=2) | 85.0 ± 0.0 (n=2) |' in tables
    assert '| Dec-SLRep | 69.0 ± 0.0 (n=2) |' in tables
    assert '| SimCLR | 77.5 ± 0.7 (n=2) |' in tables
    assert '| Central SimCLR (reference) | 82.5 ± 0.7 (n=2) | ″ | ″ | ″ |' \
        in tables
    assert '| Init (reference) | 30.5 ± 0.7 (n=2) |' in tables
    header = [l for l in tables.splitlines() if l.startswith('| method')][0]
    assert header.split('|')[2:6] == [' iid ', ' dir1 ', ' dir0.1 ',
                                      ' dir0.02 ']
    assert table_file.read_text().strip() in tables
    featarc = capsys.readouterr().out
    assert '| FeatARC |' in featarc and '| FedAvg |' in featarc


def test_drop_series_leaves_out_lines_and_references(results, tmp_path,
                                                     capsys):
    plot.main([results, '--plot', 'heterogeneity', '--filter', 'q=None',
               '--out-dir', str(tmp_path), '--table', '--drop-series',
               'Dec-SL', 'Init'])
    rows = [l.split('|')[1].strip() for l in capsys.readouterr().out
            .splitlines() if l.startswith('| ') and 'method' not in l]
    assert sorted(rows) == ['Central SimCLR (reference)', 'Dec-SLRep',
                            'SimCLR', 'SimSiam']
    with pytest.raises(SystemExit, match='drop-series'):
        plot.main([results, '--plot', 'featarc', '--filter', 'q=q4',
                   '--out-dir', str(tmp_path), '--drop-series',
                   'FedAvg', 'FeatARC'])
    with pytest.raises(SystemExit, match="no series named Dec-Sl in"):
        plot.main([results, '--plot', 'heterogeneity', '--filter', 'q=None',
                   '--out-dir', str(tmp_path), '--drop-series', 'Dec-Sl'])


def test_flat_table_and_errors(results, tmp_path, capsys):
    plot.main([results, '--table', '--filter', 'q=q4'])
    text = capsys.readouterr().out
    assert '| method | knn_top1 | linear_top1 | cls_top1 |' in text
    assert '| FedAvg/SimCLR | 55.5 ± 0.7 (n=2) | 60.5 ± 0.7 (n=2) | – |' \
        in text
    with pytest.raises(SystemExit, match='no ok records'):
        plot.main([results, '--filter', 'method=nobody', '--table'])
    with pytest.raises(SystemExit, match='not found'):
        plot.main([str(tmp_path / 'missing.jsonl'), '--table'])
    with pytest.raises(SystemExit):  # argparse: line needs --x
        plot.main([results, '--plot', 'line'])


def test_mean_std_and_order():
    assert plot.mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5), 2)
    assert plot.mean_std([5.0]) == (5.0, 0.0, 1)
    assert plot.order_x(['dir0.02', 'skew0', 'iid', 'dir1', 'skew0.5'],
                        None) == ['iid', 'dir1', 'dir0.02', 'skew0.5',
                                  'skew0']
    assert plot.order_x([25, 1, 5], None) == [1, 5, 25]


def test_untrained_references_become_reference_rows(tmp_path, capsys):
    recs = []
    for seed in (0, 1):
        for part in ('iid', 'dir0.1'):
            rec = _rec('SimCLR', seed, 70 + seed, g_partition=part,
                       num_clients=10)
            rec['references'] = dict(
                untrained_init=dict(linear_top1=40 + seed, knn_top1=35.0),
                untrained_default=dict(linear_top1=30 + seed))
            recs.append(rec)
    path = tmp_path / 'refs.jsonl'
    _write(path, recs)
    written = plot.main([str(path), '--plot', 'heterogeneity', '--out-dir',
                         str(tmp_path), '--table'])
    assert osp.getsize(written['heterogeneity']) > 1000
    text = capsys.readouterr().out
    assert '| SimCLR (untrained: model init) (reference) | 40.5 ± 0.7 ' \
        '(n=2) | ″ |' in text
    assert '| SimCLR (untrained: default init) (reference) | 30.5 ± 0.7 ' \
        '(n=2) | ″ |' in text
    plot.main([str(path), '--plot', 'heterogeneity', '--out-dir',
               str(tmp_path), '--table', '--untrained', 'default'])
    text = capsys.readouterr().out
    assert 'model init' not in text and 'default init' in text
    plot.main([str(path), '--table'])  # flat table: one row per reference
    text = capsys.readouterr().out
    assert '| SimCLR (untrained: model init) | 35.0 ± 0.0 (n=4) | ' \
        '40.5 ± 0.6 (n=4) | – |' in text
