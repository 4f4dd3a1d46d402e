"""Aggregator maths against hand computations."""
import pytest
import torch

from decssl_mm.federated import FedAdam, FedAvg, FedAvgM
from decssl_mm.federated.aggregators import ClientUpdateRejected


def _global():
    return {
        'w': torch.tensor([1.0, 2.0, 3.0]),
        'bn.running_mean': torch.tensor([0.0, 0.0]),
        'bn.num_batches_tracked': torch.tensor(5),
        'queue': torch.zeros(2, 4),
    }


def _client(w, rm, nbt):
    return {
        'w': torch.tensor(w),
        'bn.running_mean': torch.tensor(rm),
        'bn.num_batches_tracked': torch.tensor(nbt),
        'queue': torch.ones(2, 4),
    }


def test_fedavg_is_sample_weighted_mean():
    g = _global()
    agg = FedAvg()
    assert agg.select_keys(list(g)) == [
        'w', 'bn.running_mean', 'bn.num_batches_tracked'
    ]  # the queue stays local by default
    agg.begin_round(g)
    clients = [([2.0, 2.0, 2.0], [1.0, 1.0], 7, 10),
               ([4.0, 0.0, 1.0], [2.0, 0.0], 9, 30),
               ([0.0, 6.0, 3.0], [0.0, 4.0], 6, 60)]
    for i, (w, rm, nbt, n) in enumerate(clients):
        agg.add(i, _client(w, rm, nbt), n)
    new = agg.finalize()
    # hand computation: weights 0.1, 0.3, 0.6
    assert torch.allclose(new['w'], torch.tensor([1.4, 3.8, 2.3]))
    assert torch.allclose(new['bn.running_mean'], torch.tensor([0.7, 2.5]))
    assert new['bn.num_batches_tracked'].item() == 9  # max of the clients
    assert 'queue' not in new


def test_uniform_weighting():
    g = _global()
    agg = FedAvg(weighting='uniform')
    agg.select_keys(list(g))
    agg.begin_round(g)
    agg.add(0, _client([3.0, 3.0, 3.0], [0.0, 0.0], 5), 1)
    agg.add(1, _client([1.0, 1.0, 1.0], [0.0, 0.0], 5), 1000)
    assert torch.allclose(agg.finalize()['w'], torch.tensor([2.0, 2.0, 2.0]))


def test_running_sum_holds_one_tensor_per_key():
    g = _global()
    agg = FedAvg()
    agg.select_keys(list(g))
    agg.begin_round(g)
    for i in range(20):
        agg.add(i, _client([float(i)] * 3, [0.0, 0.0], 5), 1)
    # memory is one running sum, not one model per client
    assert set(agg.running_sums()) == {'w', 'bn.running_mean'}
    assert agg.num_clients == 20


def test_fedbn_keeps_bn_local():
    g = _global()
    agg = FedAvg(exclude=[r'(^|\.)bn\.'])
    keys = agg.select_keys(list(g))
    assert keys == ['w', 'queue']


def test_filter_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match='aggregator.exclude'):
        FedAvg(exclude=['does_not_exist']).select_keys(list(_global()))
    with pytest.raises(ValueError, match='aggregator.include'):
        FedAvg(include=['nope']).select_keys(list(_global()))


def test_non_finite_update_rejected():
    g = _global()
    agg = FedAvg()
    agg.select_keys(list(g))
    agg.begin_round(g)
    with pytest.raises(ClientUpdateRejected, match='client 3'):
        agg.add(3, _client([float('nan'), 0.0, 0.0], [0.0, 0.0], 5), 1)
    assert agg.num_clients == 0


def test_fedavgm_without_momentum_equals_fedavg():
    g = _global()
    a, b = FedAvg(), FedAvgM(server_lr=1.0, momentum=0.0)
    for agg in (a, b):
        agg.select_keys(list(g))
        agg.begin_round(g)
        agg.add(0, _client([2.0, 2.0, 2.0], [1.0, 1.0], 5), 3)
        agg.add(1, _client([0.0, 0.0, 0.0], [1.0, 1.0], 5), 1)
    assert torch.allclose(a.finalize()['w'], b.finalize()['w'])


def test_fedavgm_momentum_accumulates():
    g = {'w': torch.zeros(1)}
    agg = FedAvgM(server_lr=1.0, momentum=0.5, exclude=[])
    agg.select_keys(['w'])
    outs = []
    for _ in range(2):
        agg.begin_round(g)
        agg.add(0, {'w': g['w'] + 1.0}, 1)
        g = {'w': agg.finalize()['w']}
        outs.append(g['w'].item())
    # v1 = 1 -> w = 1; v2 = 0.5 * 1 + 1 = 1.5 -> w = 2.5
    assert outs == pytest.approx([1.0, 2.5])
    state = agg.state_dict()
    agg2 = FedAvgM(server_lr=1.0, momentum=0.5, exclude=[])
    agg2.load_state_dict(state)
    assert torch.allclose(agg2._velocity['w'], torch.tensor([1.5],
                                                            dtype=torch.float64))


def test_fedadam_step_direction_and_size():
    g = {'w': torch.zeros(2)}
    agg = FedAdam(server_lr=0.1, betas=(0.9, 0.99), tau=1e-3, exclude=[])
    agg.select_keys(['w'])
    agg.begin_round(g)
    agg.add(0, {'w': torch.tensor([1.0, -2.0])}, 1)
    new = agg.finalize()['w']
    # m = 0.1 d, v = 0.01 d^2 -> step = 0.1 * 0.1 d / (0.1 |d| + 1e-3)
    d = torch.tensor([1.0, -2.0])
    expect = 0.1 * 0.1 * d / (0.1 * d.abs() + 1e-3)
    assert torch.allclose(new, expect, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match='weighting'):
        FedAvg(weighting='size')
    with pytest.raises(ValueError, match='momentum'):
        FedAvgM(momentum=1.0)


# ------------------------------------------------ parameters and buffers
def _bn_global():
    return {
        'conv.weight': torch.zeros(2),
        'bn.weight': torch.ones(2),
        'bn.running_mean': torch.zeros(2),
        'bn.running_var': torch.ones(2),
        'bn.num_batches_tracked': torch.tensor(0),
    }


def _bn_client(w, rm, rv, nbt):
    return {
        'conv.weight': torch.tensor(w),
        'bn.weight': torch.tensor([2.0, 2.0]),
        'bn.running_mean': torch.tensor(rm),
        'bn.running_var': torch.tensor(rv),
        'bn.num_batches_tracked': torch.tensor(nbt),
    }


def test_select_keys_records_parameters_by_name_rule():
    agg = FedAvgM()
    agg.select_keys(list(_bn_global()))
    assert agg.param_keys == ['conv.weight', 'bn.weight']
    assert agg.export_only_keys == []


def test_select_keys_takes_parameter_names():
    g = dict(_bn_global(), **{'ema.shadow': torch.zeros(2)})
    agg = FedAvgM(exclude=[])
    agg.select_keys(list(g), param_keys=['conv.weight', 'bn.weight'])
    assert agg.param_keys == ['conv.weight', 'bn.weight']
    with pytest.raises(ValueError, match="'module.conv.weight'"):
        agg.select_keys(list(g), param_keys=['module.conv.weight'])


def test_fedavgm_momentum_skips_running_statistics():
    g = _bn_global()
    agg = FedAvgM(server_lr=1.0, momentum=0.9)
    agg.select_keys(list(g))
    ws = []
    for r in range(3):
        agg.begin_round(g)
        agg.add(0, _bn_client([1.0, 1.0], [0.5, 0.5], [0.3, 0.3], 4), 1)
        new = agg.finalize()
        g = {**g, **new}
        ws.append(float(g['conv.weight'][0]))
        # the clients' statistics, never a momentum overshoot
        assert torch.allclose(g['bn.running_var'], torch.tensor([0.3, 0.3]))
        assert torch.allclose(g['bn.running_mean'], torch.tensor([0.5, 0.5]))
        assert g['bn.num_batches_tracked'].item() == 4  # max of the round
    # parameters still move with momentum: 0 -> 1 -> 1.9 -> ...
    assert ws[:2] == pytest.approx([1.0, 1.9])
    assert set(agg.state_dict()['velocity']) == {'conv.weight', 'bn.weight'}


def test_fedadam_averages_buffers_plainly():
    g = _bn_global()
    agg = FedAdam(server_lr=0.01)
    agg.select_keys(list(g))
    agg.begin_round(g)
    agg.add(0, _bn_client([1.0, 1.0], [4.0, 6.0], [2.0, 3.0], 7), 1)
    agg.add(1, _bn_client([1.0, 1.0], [2.0, 0.0], [1.0, 1.0], 5), 3)
    new = agg.finalize()
    assert torch.allclose(new['bn.running_mean'], torch.tensor([2.5, 1.5]))
    assert torch.allclose(new['bn.running_var'], torch.tensor([1.25, 1.5]))
    # a parameter moves by about server_lr
    assert float(new['conv.weight'][0]) == pytest.approx(0.01, rel=0.02)
    assert set(agg.state_dict()['m']) == {'conv.weight', 'bn.weight'}


def test_float_buffer_outside_param_keys_is_averaged():
    g = {'w': torch.zeros(1), 'ema.shadow': torch.zeros(1)}
    agg = FedAvgM(server_lr=1.0, momentum=0.9, exclude=[])
    agg.select_keys(list(g), param_keys=['w'])
    for _ in range(2):
        agg.begin_round(g)
        agg.add(0, {'w': torch.ones(1), 'ema.shadow': torch.ones(1)}, 1)
        g = {**g, **agg.finalize()}
    assert g['ema.shadow'].item() == pytest.approx(1.0)
    assert g['w'].item() == pytest.approx(1.9)


def test_fedbn_global_statistics_are_clients_weighted_mean():
    """BN stays local; the global model gets the clients' mean statistics."""
    g = _bn_global()
    agg = FedAvg(exclude=[r'(^|\.)bn\.'])
    assert agg.select_keys(list(g)) == ['conv.weight']
    assert agg.export_only_keys == ['bn.running_mean', 'bn.running_var']
    agg.begin_round(g)
    agg.add(0, _bn_client([1.0, 1.0], [1.0, 2.0], [0.2, 0.4], 3), 10)
    agg.add(1, _bn_client([3.0, 3.0], [3.0, 0.0], [0.6, 0.8], 9), 30)
    new = agg.finalize()
    assert set(new) == {'conv.weight', 'bn.running_mean', 'bn.running_var'}
    assert torch.allclose(new['bn.running_var'],
                          0.25 * torch.tensor([0.2, 0.4]) +
                          0.75 * torch.tensor([0.6, 0.8]))
    assert torch.allclose(new['bn.running_mean'], torch.tensor([2.5, 0.5]))
    assert new['bn.running_var'].dtype == torch.float32
    # a NaN in a client's local statistics refuses the whole client
    agg.begin_round(g)
    bad = _bn_client([1.0, 1.0], [1.0, 2.0], [float('nan'), 0.4], 3)
    with pytest.raises(ClientUpdateRejected, match="'bn.running_var'"):
        agg.add(0, bad, 10)
    assert agg.finalize() is None
