"""The Q1 verdict rule on synthetic records: holds, fails, not resolved,
at random features."""
import json
import math

import pytest

from decssl_mm.study.verdicts import (Series, cell_status, collect_cells,
                                      q1_verdicts, verdict_table)

SSL = Series('Dec-SSL/SimCLR', 'Dec-SSL/SimCLR', 'linear_top1')
SL = Series('Dec-SL', 'Dec-SL', 'cls_top1')


def rec(method, partition, seed, value, ref=50.0, metric=None):
    metric = metric or ('cls_top1' if method == 'Dec-SL' else 'linear_top1')
    return dict(
        status='ok', trained=True, method=method, seed=seed,
        train_key=f'{method}-{partition}-{seed}',
        fields=dict(partition=partition),
        metrics={metric: value},
        references=dict(untrained_init={metric: ref - 5},
                        untrained_default={metric: ref}))


def records(ssl_iid, ssl_non, sl_iid, sl_non, ref=50.0):
    out = []
    for seed, (a, b, c, d) in enumerate(zip(ssl_iid, ssl_non, sl_iid,
                                            sl_non)):
        out += [rec('Dec-SSL/SimCLR', 'iid', seed, a, ref),
                rec('Dec-SSL/SimCLR', 'skew0', seed, b, ref),
                rec('Dec-SL', 'iid', seed, c, ref),
                rec('Dec-SL', 'skew0', seed, d, ref)]
    return out


def test_holds_when_dec_sl_drops_more_by_two_sigma():
    rs = records([80, 81, 79], [78, 79, 77], [85, 86, 84], [70, 72, 68])
    (v, ) = q1_verdicts(rs, SSL, SL)
    assert v.partition == 'skew0'
    assert v.ssl_drop.values == [2, 2, 2]
    assert v.sl_drop.values == [15, 14, 16]
    assert v.delta == pytest.approx(13.0)
    assert v.verdict == 'holds'


def test_fails_when_dec_ssl_drops_more_by_two_sigma():
    rs = records([80, 81, 79], [65, 66, 64], [85, 86, 84], [84, 85, 83])
    (v, ) = q1_verdicts(rs, SSL, SL)
    assert v.delta == pytest.approx(-14.0)
    assert v.verdict == 'fails'


def test_not_resolved_within_two_sigma():
    rs = records([80, 81, 79], [75, 79, 70], [85, 86, 84], [79, 84, 76])
    (v, ) = q1_verdicts(rs, SSL, SL)
    assert v.verdict == 'not resolved'
    assert abs(v.delta) <= 2 * v.sigma


def test_a_cell_at_random_features_carries_no_verdict():
    # Dec-SSL on skew0 sits at its untrained reference (margins 1, -1, 2)
    rs = records([80, 81, 79], [51, 49, 52], [85, 86, 84], [60, 61, 59])
    (v, ) = q1_verdicts(rs, SSL, SL)
    assert v.verdict == 'at random features'
    assert 'Dec-SSL skew0' in v.why
    assert math.isnan(v.delta)


def test_one_seed_is_not_resolved_and_missing_references_are_named():
    rs = records([80], [70], [85], [60])
    (v, ) = q1_verdicts(rs, SSL, SL)
    assert v.verdict == 'not resolved'
    no_ref = rec('Dec-SSL/SimCLR', 'iid', 0, 80.0)
    no_ref['references'] = None
    cell = collect_cells([no_ref], SSL)['iid']
    assert cell_status(cell) == 'records without untrained references'


def test_table_and_cli(tmp_path, capsys):
    rs = records([80, 81, 79], [78, 79, 77], [85, 86, 84], [70, 72, 68])
    assert '**holds**' in verdict_table(q1_verdicts(rs, SSL, SL))
    path = tmp_path / 'r.jsonl'
    path.write_text(''.join(json.dumps(r) + '\n' for r in rs))
    from tools.analysis.margins import main
    assert main([str(path), '--verdicts']) == 0
    out = capsys.readouterr().out
    assert 'Dec-SSL/SimCLR linear_top1 vs Dec-SL cls_top1' in out
    assert '**holds**' in out
