"""Margins of trained figures over the better untrained reference."""
import json
import os.path as osp
import runpy

from _helpers.configs import ROOT

from decssl_mm.study.margins import margin_rows, margin_table, seed_margin


def _rec(method, seed, knn, init, default, status='ok', train_key=None):
    return dict(method=method, seed=seed, status=status,
                train_key=train_key or f'{method}-{seed}',
                fields=dict(partition='iid'), train_time_s=100.0 + seed,
                metrics=dict(knn_top1=knn),
                references=dict(untrained_init=dict(knn_top1=init),
                                untrained_default=dict(knn_top1=default)))


def test_seed_margin_uses_the_better_reference():
    assert seed_margin(_rec('A', 0, 70.0, 50.0, 60.0), 'knn_top1') == \
        (70.0, 60.0, 10.0)
    assert seed_margin(_rec('A', 0, 70.0, 65.0, 60.0), 'knn_top1') == \
        (70.0, 65.0, 5.0)
    assert seed_margin(dict(metrics=dict(knn_top1=1.0)), 'knn_top1') is None


def test_rows_pair_seeds_and_skip_failures():
    recs = [_rec('A', 0, 70.0, 50.0, 60.0), _rec('A', 1, 74.0, 50.0, 62.0),
            _rec('A', 2, 10.0, 50.0, 60.0, status='failed'),
            _rec('B', 0, 61.0, 50.0, 60.0),
            # a re-evaluation of B seed 0: the later record wins
            _rec('B', 0, 63.0, 50.0, 60.0, train_key='B-0')]
    a, b = margin_rows(recs, 'knn_top1')
    assert a.method == 'A partition=iid' and a.margins == [10.0, 12.0]
    assert a.reaches(10) and not a.reaches(11.5)
    assert b.values == [63.0] and not b.reaches(10)
    table = margin_table([a, b], 10)
    assert '| A partition=iid | 2 | 72.0 ± 2.8 | 61.0 ± 1.4 | 11.0 ± 1.4 ' \
        '| 100 | yes |' in table
    assert table.rstrip().endswith('| no |')


def test_cli_prints_both_metrics(tmp_path, capsys):
    path = tmp_path / 'r.jsonl'
    path.write_text(json.dumps(_rec('A', 0, 70.0, 50.0, 60.0)) + '\n')
    tool = runpy.run_path(osp.join(ROOT, 'tools/analysis/margins.py'))
    assert tool['main']([str(path)]) == 0
    out = capsys.readouterr().out
    assert 'knn_top1 trained' in out and 'margin >= 10' in out
    assert '(no record with the metric' in out  # no linear_top1 here


def test_one_seed_shows_no_spread():
    """A single seed has no spread: '± ?', never '± 0.0'."""
    rows = margin_rows([_rec('A', 0, 70.0, 50.0, 60.0)], 'knn_top1')
    cells = rows[0].cells()
    assert '70.0 ± ?' in cells and '10.0 ± ?' in cells
    assert not any('± 0.0' in c for c in cells)
    two = margin_rows([_rec('A', 0, 70.0, 50.0, 60.0),
                       _rec('A', 1, 72.0, 50.0, 60.0)], 'knn_top1')
    assert '71.0 ± 1.4' in two[0].cells()
