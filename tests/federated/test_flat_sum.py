"""The flat running sum, the fused finiteness check and the state view."""
import pytest
import torch
from torch import nn

from decssl_mm.federated.aggregators import FedAvg
from decssl_mm.federated.aggregators.flat_sum import (FlatWeightedSum,
                                                      flat_all_finite,
                                                      flatten_tensors)
from decssl_mm.federated.aggregators.update_checks import all_finite
from decssl_mm.federated.state_view import ModelStateView


def _values(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        'conv': torch.randn(4, 3, 3, 3, generator=g).to(
            memory_format=torch.channels_last),
        'half': torch.randn(5, generator=g).half(),
        'bias': torch.randn(4, generator=g),
    }


@pytest.mark.parametrize('pack', [2**22, 40])
def test_flat_sum_equals_per_tensor_float64_sums_bitwise(pack):
    # packed, and tensor by tensor (the float32 buffer is above pack=40);
    # a cast buffer smaller than the values
    refs = _values(0)
    acc = FlatWeightedSum(list(refs), refs, pack_numel=pack, cast_numel=7)
    assert acc.empty and acc.as_dict() == {}
    expect = {}
    for i in range(4):
        v, w = _values(i + 1), float(3 * i + 2)
        assert acc.fold(v, w)
        for k, t in v.items():
            if k in expect:
                expect[k].add_(t.double(), alpha=w)
            else:
                expect[k] = t.double() * w
    got = acc.as_dict()
    assert list(got) == list(refs)  # keys in order; float16 in a buffer
    for k in refs:  # of its own (one per dtype); logical element order
        assert got[k].dtype == torch.float64 and got[k].shape == refs[k].shape
        assert torch.equal(got[k], expect[k]), k


@pytest.mark.parametrize('pack', [2**22, 40])
def test_a_non_finite_update_adds_nothing(pack):
    refs = _values(0)
    acc = FlatWeightedSum(list(refs), refs, pack_numel=pack)
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


def test_packing_buffers_are_kept_across_clients_and_rounds():
    refs = _values(0)
    acc = FlatWeightedSum(list(refs), refs)
    acc.fold(_values(1), 1.0)
    bufs = [g._pack_buf for g in acc._groups]
    # float32 (two keys) packed; float16 (one key) read in place
    assert [b is not None for b in bufs] == [True, False]
    acc.fold(_values(2), 1.0)
    acc.reset(list(refs), refs)  # a new round, same layout
    acc.fold(_values(3), 1.0)
    assert acc._groups[0]._pack_buf is bufs[0]
    assert torch.equal(acc.as_dict()['bias'], _values(3)['bias'].double())


def test_flat_sum_does_not_touch_the_values_it_folds():
    refs = {'a': torch.zeros(3, dtype=torch.float64)}
    acc = FlatWeightedSum(['a'], refs)
    v = {'a': torch.ones(3, dtype=torch.float64)}
    acc.fold(v, 5.0)
    acc.fold(v, 5.0)
    assert torch.equal(v['a'], torch.ones(3, dtype=torch.float64))
    assert torch.equal(acc.as_dict()['a'], torch.full((3,), 10.0,
                                                      dtype=torch.float64))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64,
                                   torch.float16, torch.bfloat16])
def test_flat_finiteness_is_exact(dtype):
    big = torch.finfo(dtype).max
    ok = torch.full((64,), big, dtype=dtype)  # the sum overflows: finite
    assert flat_all_finite(ok)
    for bad in (float('nan'), float('inf'), -float('inf')):
        t = torch.zeros(64, dtype=dtype)
        t[17] = bad
        assert not flat_all_finite(t)
    t = torch.zeros(8, dtype=dtype)
    t[0], t[1] = float('inf'), -float('inf')  # inf - inf: still caught
    assert not flat_all_finite(t)
    assert flat_all_finite(torch.zeros(0, dtype=dtype))


def test_all_finite_over_mixed_dtypes_and_layouts():
    ts = [torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last),
          torch.randn(3).half(), torch.randn(2, dtype=torch.float64)]
    assert all_finite(ts)
    ts[1][2] = float('nan')
    assert not all_finite(ts)


def test_flatten_follows_logical_order():
    a = torch.arange(24.).view(1, 2, 3, 4).to(
        memory_format=torch.channels_last)
    b = torch.tensor([100., 101.])
    flat = flatten_tensors([a, b])
    assert torch.equal(flat, torch.cat([torch.arange(24.), b]))


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


# ---------------------------------------------------------- the state view
class _Net(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.shared = self.conv  # the same module under two names
        self.register_buffer('scratch', torch.zeros(2), persistent=False)


def _same(view: ModelStateView, module: nn.Module) -> bool:
    got, ref = view.tensors(), module.state_dict()
    return list(got) == list(ref) and all(
        torch.equal(got[k], ref[k]) and got[k].data_ptr() == ref[k].data_ptr()
        for k in ref)


def test_state_view_reads_what_state_dict_reads():
    net = _Net()
    view = ModelStateView(net)
    assert view.exact and _same(view, net)
    assert 'scratch' not in view.tensors()  # non-persistent buffer
    assert 'shared.weight' in view.tensors()  # duplicates kept, in order


def test_state_view_follows_reassigned_and_swapped_tensors():
    net = _Net()
    view = ModelStateView(net)
    net.conv.weight = nn.Parameter(torch.ones_like(net.conv.weight))
    net.bn.weight.data = torch.full_like(net.bn.weight, 7.)
    net.bn.running_mean = torch.full((4,), 3.)
    assert _same(view, net)
    with torch.no_grad():  # writes land in the module
        view.tensors()['conv.bias'].copy_(torch.arange(4.))
    assert torch.equal(net.conv.bias, torch.arange(4.))


def test_state_view_needs_refresh_after_a_structural_change():
    net = _Net()
    view = ModelStateView(net)
    net.head = nn.Linear(2, 2)
    assert 'head.weight' not in view.tensors()
    view.refresh()
    assert _same(view, net)


def test_state_view_falls_back_where_a_module_customises_its_state():
    net = _Net()
    net.bn._register_state_dict_hook(
        lambda module, sd, prefix, local_metadata: sd.pop(
            prefix + 'running_var'))
    view = ModelStateView(net)
    assert not view.exact
    assert 'bn.running_var' not in view.tensors()

    class Extra(nn.Linear):

        def get_extra_state(self):
            return {'note': 1}

    m = nn.Sequential(Extra(2, 2))
    view = ModelStateView(m)
    assert not view.exact and '0._extra_state' in view.tensors()


def test_folding_a_float64_model_leaves_its_tensors_alone():
    # a float64 client tensor is not converted by .double(): the first fold
    # must copy it before scaling, or the live model would be scaled
    from decssl_mm.federated.aggregators.base_aggregator import fold_weighted
    v = {'bn.running_mean': torch.ones(2, dtype=torch.float64)}
    sums = {}
    fold_weighted(sums, v, ['bn.running_mean'], 4.0)
    assert torch.equal(v['bn.running_mean'], torch.ones(2,
                                                        dtype=torch.float64))
    assert torch.equal(sums['bn.running_mean'], torch.full(
        (2,), 4.0, dtype=torch.float64))


def test_per_tensor_finiteness_is_exact_despite_norm_overflow():
    from decssl_mm.federated.aggregators.flat_sum import tensors_all_finite
    huge = [torch.full((4,), 1e30), torch.zeros(3).half()]  # norm: inf
    assert tensors_all_finite(huge)
    huge[1][0] = float('inf')
    assert not tensors_all_finite(huge)
    assert not tensors_all_finite([torch.tensor([0., float('nan')])])
    assert tensors_all_finite([])


def test_group_finiteness_same_verdict_packed_or_by_norm():
    from decssl_mm.federated.aggregators.flat_sum import group_all_finite
    ts = [torch.randn(5), torch.full((3,), 1e30)]
    for pack in (2**22, 1):  # flattened and summed; one norm per tensor
        assert group_all_finite(ts, pack)
        bad = [t.clone() for t in ts]
        bad[0][2] = float('nan')
        assert not group_all_finite(bad, pack)
