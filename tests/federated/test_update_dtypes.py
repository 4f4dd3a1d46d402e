"""An update is judged in the dtype it is folded into; integer buffers are
combined without overflow and never go below the global value."""
import pytest
import torch

from decssl_mm.federated.aggregators import (ClientUpdateRejected,
                                             CoordinateMedian, FedAdam,
                                             FedAvg, FedAvgM,
                                             NormClippedFedAvg, TrimmedMean)
from decssl_mm.federated.aggregators.int_reduce import (floor_midpoint,
                                                        saturate_to)

AGGREGATORS = {
    'FedAvg': lambda: FedAvg(exclude=[]),
    'FedAdam': lambda: FedAdam(server_lr=0.1, exclude=[]),
    'FedAvgM': lambda: FedAvgM(momentum=0.5, exclude=[]),
    'NormClippedFedAvg': lambda: NormClippedFedAvg(clip_factor=1.0,
                                                   exclude=[]),
    'TrimmedMean': lambda: TrimmedMean(trim_ratio=0.2, exclude=[]),
    'TrimmedMean0': lambda: TrimmedMean(trim_ratio=0.0, exclude=[]),
    'CoordinateMedian': lambda: CoordinateMedian(exclude=[]),
}
INT64_MAX = 2**63 - 1


def _build(name):
    if name == 'TrimmedMean0':
        try:
            return AGGREGATORS[name]()
        except ValueError:
            pytest.skip('a TrimmedMean that trims nothing is refused')
    return AGGREGATORS[name]()


def _round(agg, global_state, clients):
    agg.select_keys(list(global_state))
    agg.begin_round(global_state)
    refused = []
    for cid, state in enumerate(clients):
        try:
            agg.add(cid, state, 10)
        except ClientUpdateRejected as e:
            refused.append((cid, str(e)))
    return agg.finalize(), refused


@pytest.mark.parametrize('value,numel', [
    (1e300, 1000), (-1e300, 1000), (1e39, 1000), (1e300, 2**22 + 8)
], ids=['small', 'small_negative', 'small_just_over', 'large'])
@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_float64_overflowing_float32_refused(name, value, numel):
    g = {'w': torch.zeros(numel)}
    honest = [{'w': torch.full((numel, ), 0.01 * (i + 1))} for i in range(4)]
    hostile = {'w': torch.full((numel, ), value, dtype=torch.float64)}
    out, refused = _round(_build(name), g, honest + [hostile])
    assert [cid for cid, _ in refused] == [4]
    assert "'w'" in refused[0][1]
    assert out['w'].dtype == torch.float32
    assert bool(torch.isfinite(out['w']).all())


@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_other_float_dtype_cast_then_folded(name):
    """A finite float64 / float16 update is cast to the global dtype."""
    g = {'w': torch.zeros(6)}
    clients = [{'w': torch.full((6, ), 0.5)} for _ in range(3)]
    ref, _ = _round(_build(name), dict(g), [dict(c) for c in clients])
    mixed = [
        clients[0], {'w': clients[1]['w'].double()},
        {'w': clients[2]['w'].half()}
    ]
    out, refused = _round(_build(name), dict(g), mixed)
    assert not refused
    assert out['w'].dtype == torch.float32
    assert torch.equal(out['w'], ref['w'])


def _with_counter(value, dtype=torch.int64):
    return {
        'w': torch.zeros(3),
        'bn.num_batches_tracked': torch.tensor(value, dtype=dtype)
    }


@pytest.mark.parametrize('hostile', [INT64_MAX, -2**63])
@pytest.mark.parametrize('num_clients', [2, 5])
@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_int_buffers_never_overflow(name, num_clients, hostile):
    g = _with_counter(100)
    clients = [_with_counter(100 + i) for i in range(num_clients - 1)]
    clients.append(_with_counter(hostile))
    out, refused = _round(_build(name), g, clients)
    assert not refused
    got = int(out['bn.num_batches_tracked'])
    assert 100 <= got <= INT64_MAX
    assert out['bn.num_batches_tracked'].dtype == torch.int64


@pytest.mark.parametrize('name', list(AGGREGATORS))
def test_int_update_of_wider_dtype_saturates(name):
    g = _with_counter(7, torch.int32)
    clients = [_with_counter(INT64_MAX) for _ in range(3)]
    out, refused = _round(_build(name), g, clients)
    assert not refused
    value = out['bn.num_batches_tracked']
    assert value.dtype == torch.int32
    assert int(value) == torch.iinfo(torch.int32).max


def test_int_helpers():
    a = torch.tensor([INT64_MAX, -2**63, 5, -5, 3, -2**63])
    b = torch.tensor([INT64_MAX, -2**63, 6, -6, -4, INT64_MAX])
    expect = [INT64_MAX, -2**63, 5, -6, -1, -1]
    assert floor_midpoint(a, b).tolist() == expect
    assert saturate_to(torch.tensor([2**40, -2**40]),
                       torch.int32).tolist() == [2**31 - 1, -2**31]
