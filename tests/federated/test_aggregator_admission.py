"""A client update enters every part of an aggregator's state, or none."""
import pytest
import torch

from decssl_mm.federated.aggregators import (ClientUpdateRejected,
                                             CoordinateMedian, FedAdam,
                                             FedAvg, FedAvgM,
                                             NormClippedFedAvg, TrimmedMean)

AGGREGATORS = {
    'FedAvg': lambda: FedAvg(exclude=[]),
    'FedAdam': lambda: FedAdam(server_lr=0.1, exclude=[]),
    'FedAvgM': lambda: FedAvgM(momentum=0.5, exclude=[]),
    'NormClippedFedAvg': lambda: NormClippedFedAvg(clip_factor=1.0,
                                                   exclude=[]),
    'TrimmedMean': lambda: TrimmedMean(trim_ratio=0.2, exclude=[]),
    'CoordinateMedian': lambda: CoordinateMedian(exclude=[]),
}


def _global():
    return {
        'a': torch.zeros(3),
        'b': torch.zeros(2, 2),
        'bn.running_var': torch.ones(2),
        'bn.num_batches_tracked': torch.tensor(3),
    }


def _honest(i):
    return {
        'a': torch.tensor([1.0, -2.0, 0.5]) * (i + 1),
        'b': torch.full((2, 2), 0.1 * (i + 1)),
        'bn.running_var': torch.full((2, ), 0.5 + i),
        'bn.num_batches_tracked': torch.tensor(4 + i),
    }


def _bad(kind):
    s = _honest(7)
    if kind == 'nan_in_second_key':
        s['b'][1, 1] = float('nan')
    elif kind == 'second_key_missing':
        del s['b']
    elif kind == 'one_element_shape':  # would broadcast in add_
        s['b'] = torch.tensor([50.0])
    elif kind == 'wrong_shape_second_key':  # fails after 'a' is summed
        s['b'] = torch.full((3, ), 50.0)
    elif kind == 'int_for_float_key':
        s['b'] = torch.ones(2, 2, dtype=torch.int64)
    elif kind == 'float_for_int_key':
        s['bn.num_batches_tracked'] = torch.tensor(1e12)
    elif kind == 'inf_in_buffer':
        s['bn.running_var'][0] = float('inf')
    elif kind == 'not_a_tensor':
        s['a'] = [1.0, 2.0, 3.0]
    return s


BAD_KINDS = [
    'nan_in_second_key', 'second_key_missing', 'one_element_shape',
    'wrong_shape_second_key', 'int_for_float_key', 'float_for_int_key', 'inf_in_buffer', 'not_a_tensor'
]
BAD_KEY = {
    'nan_in_second_key': "'b'",
    'second_key_missing': "'b'",
    'one_element_shape': "'b'",
    'wrong_shape_second_key': "'b'",
    'int_for_float_key': "'b'",
    'float_for_int_key': "'bn.num_batches_tracked'",
    'inf_in_buffer': "'bn.running_var'",
    'not_a_tensor': "'a'",
}


def _run(agg, clients):
    """Aggregate ``(id, state)`` clients; return the result and refusals."""
    g = _global()
    agg.select_keys(list(g))
    agg.begin_round(g)
    refused = []
    for cid, state in clients:
        try:
            agg.add(cid, state, 10 + cid)
        except ClientUpdateRejected as e:
            refused.append(str(e))
    return agg.finalize(), refused, agg.num_clients


def _assert_same(a, b):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize('kind', BAD_KINDS)
@pytest.mark.parametrize('position', [0, 2], ids=['first', 'middle'])
@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_refused_client_leaves_aggregate_unchanged(name, kind, position):
    honest = [(i, _honest(i)) for i in range(5)]
    with_bad = list(honest)
    with_bad.insert(position, (99, _bad(kind)))
    out, refused, n = _run(AGGREGATORS[name](), with_bad)
    reference, none, _ = _run(AGGREGATORS[name](), honest)
    assert none == []
    assert len(refused) == 1
    assert 'client 99' in refused[0] and BAD_KEY[kind] in refused[0]
    assert n == 5
    _assert_same(out, reference)


@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_server_state_untouched_by_refused_client(name):
    """Two rounds: the server optimizer state equals the clean run's."""
    def two_rounds(with_bad):
        agg = AGGREGATORS[name]()
        g = _global()
        agg.select_keys(list(g))
        for r in range(2):
            agg.begin_round(g)
            for i in range(5):
                agg.add(i, _honest(i + r), 10)
                if with_bad and i == 1:
                    with pytest.raises(ClientUpdateRejected):
                        agg.add(99, _bad('wrong_shape_second_key'), 10)
            g = {**g, **agg.finalize()}
        return g, agg.state_dict()

    g1, s1 = two_rounds(True)
    g2, s2 = two_rounds(False)
    _assert_same(g1, g2)
    assert repr(s1) == repr(s2)


def test_wrong_shape_first_client_does_not_break_later_ones():
    agg = FedAvg(exclude=[])
    out, refused, n = _run(agg, [(0, _bad('one_element_shape')),
                                 (1, _honest(1)), (2, _honest(2))])
    assert len(refused) == 1 and n == 2
    # weights 11 and 12
    expect = (11 * _honest(1)['b'] + 12 * _honest(2)['b']) / 23
    assert torch.allclose(out['b'], expect)


def test_invalid_sample_count_refused():
    agg = FedAvg(exclude=[])
    for n in (-1, float('nan'), float('inf')):
        g = _global()
        agg.select_keys(list(g))
        agg.begin_round(g)
        with pytest.raises(ClientUpdateRejected, match='sample count'):
            agg.add(4, _honest(0), n)
        assert agg.num_clients == 0


def test_failed_buffer_write_keeps_norms_paired(monkeypatch):
    """A disk write failing for one client: its norm is not kept either."""
    def values(i):
        return {'w': torch.tensor([0.1 * (i + 1), 0.0])}

    def run(fail_on):
        agg = NormClippedFedAvg(clip_factor=1.0, exclude=[])
        agg.select_keys(['w'])
        agg.begin_round({'w': torch.zeros(2)})
        real_add = agg.buffer.add
        calls = []

        def flaky_add(cid, flat, weight):
            calls.append(cid)
            if cid == fail_on:
                raise OSError('disk full')
            real_add(cid, flat, weight)

        monkeypatch.setattr(agg.buffer, 'add', flaky_add)
        for i in range(4):
            try:
                agg.add(i, values(i), 1)
            except OSError:
                assert i == fail_on
        assert len(agg._norms) == len(agg.buffer)
        return agg.finalize()['w']

    # clients 0, 2, 3 remain: norms 0.1, 0.3, 0.4 -> bound 0.3
    got = run(fail_on=1)
    expect = torch.tensor([(0.1 + 0.3 + 0.3) / 3, 0.0], dtype=torch.float64)
    assert torch.allclose(got.double(), expect, atol=1e-7)


@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_large_finite_fp16_update_accepted(name):
    """An fp16 tensor whose sum overflows is still finite elementwise."""
    g = {'w': torch.zeros(8, dtype=torch.float16)}
    agg = AGGREGATORS[name]()
    agg.select_keys(['w'])
    agg.begin_round(g)
    big = torch.full((8, ), 60000.0, dtype=torch.float16)
    assert not torch.isfinite(big.sum())
    for i in range(5):
        agg.add(i, {'w': big.clone()}, 1)
    assert agg.num_clients == 5
    out = agg.finalize()['w']
    assert out.dtype == torch.float16 and bool(torch.isfinite(out).all())
    if name not in ('FedAdam', 'FedAvgM'):
        assert torch.equal(out, big)
