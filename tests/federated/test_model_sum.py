"""The per-tensor running sum of models and the fused finiteness check."""
import pytest
import torch

from decssl_mm.federated.aggregators import BaseAggregator, FedAvg
from decssl_mm.federated.aggregators.base_aggregator import fold_weighted
from decssl_mm.federated.aggregators.model_sum import PerTensorSum
from decssl_mm.federated.aggregators.update_checks import all_finite


def _values(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        'conv': torch.randn(4, 3, 3, 3, generator=g).to(
            memory_format=torch.channels_last),
        'half': torch.randn(5, generator=g).half(),
        'bias': torch.randn(4, generator=g),
    }


def test_sum_equals_float64_sums_per_key_bitwise():
    refs = _values(0)
    acc = PerTensorSum(list(refs), refs)
    expect = {k: torch.zeros_like(v, dtype=torch.float64)
              for k, v in refs.items()}
    for i in range(3):
        v = _values(i + 1)
        assert acc.fold(v, float(i + 2))
        for k in refs:
            expect[k].add_(v[k].double(), alpha=float(i + 2))
    got = acc.as_dict()
    assert list(got) == list(refs)
    for k in refs:
        assert got[k].dtype == torch.float64
        assert torch.equal(got[k], expect[k]), k


def test_a_non_finite_update_adds_nothing():
    refs = _values(0)
    acc = PerTensorSum(list(refs), refs)
    assert acc.empty and acc.as_dict() == {}
    assert acc.fold(_values(1), 2.0)
    before = {k: v.clone() for k, v in acc.as_dict().items()}
    bad = _values(2)
    bad['bias'][3] = float('nan')  # the last key: earlier ones pass
    assert not acc.fold(bad, 5.0)
    for k, v in acc.as_dict().items():
        assert torch.equal(v, before[k]), k
    # unchecked, it is added (the caller checked elsewhere)
    assert acc.fold(bad, 5.0, check_finite=False)
    assert torch.isnan(acc.as_dict()['bias']).any()


def test_sum_does_not_touch_the_values_it_folds():
    refs = {'a': torch.zeros(3, dtype=torch.float64)}
    acc = PerTensorSum(['a'], refs)
    v = {'a': torch.ones(3, dtype=torch.float64)}
    acc.fold(v, 5.0)
    acc.fold(v, 5.0)
    assert torch.equal(v['a'], torch.ones(3, dtype=torch.float64))
    assert torch.equal(acc.as_dict()['a'], torch.full((3,), 10.0,
                                                      dtype=torch.float64))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64,
                                   torch.float16, torch.bfloat16])
def test_finiteness_is_exact(dtype):
    big = torch.finfo(dtype).max
    assert all_finite([torch.full((64,), big, dtype=dtype)])  # norm: inf
    for bad in (float('nan'), float('inf'), -float('inf')):
        t = torch.zeros(64, dtype=dtype)
        t[17] = bad
        assert not all_finite([torch.ones(3), t])
    assert all_finite([torch.zeros(0, dtype=dtype)]) and all_finite([])


def test_all_finite_over_mixed_dtypes_and_layouts():
    ts = [torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last),
          torch.randn(3).half(), torch.randn(2, dtype=torch.float64)]
    assert all_finite(ts)
    ts[1][2] = float('nan')
    assert not all_finite(ts)


def test_aggregator_refuses_a_non_finite_export_statistic():
    # FedBN: BN statistics stay local but their mean is exported; a NaN
    # there is refused like one in an exchanged tensor
    g = {'w': torch.zeros(3), 'bn.running_mean': torch.zeros(2)}
    agg = FedAvg(exclude=[r'(^|\.)bn\.'])
    agg.select_keys(list(g), param_keys=['w'])
    agg.begin_round(g)
    with pytest.raises(Exception, match="'bn.running_mean' holds"):
        agg.add(0, {'w': torch.ones(3),
                    'bn.running_mean': torch.tensor([0., float('nan')])}, 1)
    assert agg.num_clients == 0 and not agg.running_sums()
    agg.add(1, {'w': torch.ones(3), 'bn.running_mean': torch.ones(2)}, 1)
    assert torch.equal(agg.finalize()['w'], torch.ones(3))


def test_folding_a_float64_model_leaves_its_tensors_alone():
    # a float64 client tensor is not converted by .double(): the first fold
    # must copy it before scaling, or the live model would be scaled
    v = {'bn.running_mean': torch.ones(2, dtype=torch.float64)}
    sums = {}
    fold_weighted(sums, v, ['bn.running_mean'], 4.0)
    assert torch.equal(v['bn.running_mean'], torch.ones(2,
                                                        dtype=torch.float64))
    assert torch.equal(sums['bn.running_mean'], torch.full(
        (2,), 4.0, dtype=torch.float64))


def test_overriding_accumulate_needs_sums_models_false():

    class Clipping(BaseAggregator):

        def _accumulate(self, client_id, deltas, weight):
            super()._accumulate(client_id, deltas, weight)

    with pytest.raises(TypeError, match='sums_models = False'):
        Clipping()

    class Declared(Clipping):
        sums_models = False

    agg = Declared()
    g = {'w': torch.zeros(2)}
    agg.select_keys(list(g))
    agg.begin_round(g)
    agg.add(0, {'w': torch.ones(2)}, 1)
    assert torch.equal(agg.running_sums()['w'], torch.ones(2).double())
