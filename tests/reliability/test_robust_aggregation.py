"""Robust aggregators: one malicious client of five cannot drag the model."""
import logging
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.runner import Runner

import _helpers.reliability  # noqa: F401  (registers AttackedTrainLoop)
from _helpers.configs import tiny_federated_cfg
from decssl_mm.federated.aggregators import (CoordinateMedian, FedAvg,
                                             NormClippedFedAvg, TrimmedMean)
from decssl_mm.federated.aggregators import buffered_aggregator, trimmed_mean
from decssl_mm.registry import AGGREGATORS

P = 3000


def _global():
    return {
        'w': torch.zeros(P),
        'bn.running_mean': torch.zeros(4),
        'bn.num_batches_tracked': torch.tensor(3),
        'queue': torch.zeros(2, 2),
    }


def _honest_updates(n=5, noise=0.05):
    g = torch.Generator().manual_seed(0)
    common = torch.randn(P, generator=g)
    return [common + noise * torch.randn(P, generator=g) for _ in range(n)]


def _client(d, i):
    return {
        'w': d,
        'bn.running_mean': torch.full((4, ), float(i)),
        'bn.num_batches_tracked': torch.tensor(5 + i),
        'queue': torch.ones(2, 2),
    }


def _aggregate(agg, updates, samples=None):
    g = _global()
    agg.select_keys(list(g))
    agg.begin_round(g)
    for i, d in enumerate(updates):
        agg.add(i, _client(d, i), samples[i] if samples else 10)
    return agg.finalize()


def _attack(updates, kind):
    bad = list(updates)
    if kind == 'scaled_x1000':
        bad[4] = 1000 * bad[4]
    elif kind == 'sign_flipped':
        bad[4] = -bad[4]
    return bad


ROBUST = [
    dict(type='CoordinateMedian'),
    dict(type='TrimmedMean', trim_ratio=0.2),
    dict(type='CoordinateMedian', buffer='disk', chunk_size=700),
]


@pytest.mark.parametrize('attack', ['scaled_x1000', 'sign_flipped'])
@pytest.mark.parametrize('cfg', ROBUST, ids=lambda c: str(sorted(c.items())))
def test_one_attacker_of_five(cfg, attack):
    honest = _honest_updates()
    reference = torch.stack(honest[:4]).mean(0)  # the honest clients' mean
    scale = reference.norm()
    robust = _aggregate(AGGREGATORS.build(cfg), _attack(honest, attack))['w']
    plain = _aggregate(FedAvg(), _attack(honest, attack))['w']
    assert (robust - reference).norm() / scale < 0.05
    assert (plain - reference).norm() / scale > 0.3
    if attack == 'scaled_x1000':
        assert (plain - reference).norm() / scale > 100


def test_norm_clipping_bounds_a_scaled_update():
    honest = _honest_updates()
    reference = torch.stack(honest).mean(0)  # all five, honest
    agg = NormClippedFedAvg(clip_factor=2.0)
    out = _aggregate(agg, _attack(honest, 'scaled_x1000'))['w']
    # the attacker weighs as one client with twice the median norm
    assert (out - reference).norm() / reference.norm() < 0.25
    assert agg.last_num_clipped == 1
    # norms over every exchanged float tensor (w and bn.running_mean)
    norms = [(honest[i].double().norm()**2 + 4 * i**2).sqrt()
             for i in range(4)] + [torch.tensor(1e9, dtype=torch.float64)]
    median = torch.stack(norms).median()
    assert agg.last_bound == pytest.approx(2 * float(median), rel=1e-6)
    # honest rounds are plain FedAvg: nobody is clipped
    agg = NormClippedFedAvg(clip_factor=2.0)
    out = _aggregate(agg, honest)['w']
    assert agg.last_num_clipped == 0
    assert torch.allclose(out, _aggregate(FedAvg(), honest)['w'], atol=1e-5)


def test_inflated_sample_count_does_not_buy_influence():
    honest = _honest_updates()
    reference = torch.stack(honest[:4]).mean(0)
    bad = _attack(honest, 'sign_flipped')
    samples = [10, 10, 10, 10, 10**6]  # the attacker claims a huge dataset
    plain = _aggregate(FedAvg(), bad, samples)['w']
    median = _aggregate(CoordinateMedian(), bad, samples)['w']
    assert (plain - reference).norm() / reference.norm() > 1.5
    assert (median - reference).norm() / reference.norm() < 0.05


def test_statistics_by_hand():
    vals = [[1.0, -5.0], [2.0, 0.0], [100.0, 1.0], [3.0, 2.0], [-50.0, 3.0]]
    ups = [torch.tensor(v) for v in vals]

    def run(agg):
        g = {'w': torch.zeros(2)}
        agg.select_keys(['w'])
        agg.begin_round(g)
        for i, u in enumerate(ups):
            agg.add(i, {'w': u}, 1)
        return agg.finalize()['w']

    assert torch.allclose(run(CoordinateMedian(exclude=[])),
                          torch.tensor([2.0, 1.0]))
    # drop one value at each end: mean of the middle three
    assert torch.allclose(run(TrimmedMean(trim_ratio=0.2, exclude=[])),
                          torch.tensor([2.0, 1.0]))
    assert torch.allclose(run(TrimmedMean(trim_ratio=0.0, exclude=[])),
                          torch.tensor([11.2, 0.2]))
    # an even count: the mean of the two middle values
    ups.pop()
    assert torch.allclose(run(CoordinateMedian(exclude=[])),
                          torch.tensor([2.5, 0.5]))


def test_keys_buffers_and_arguments(tmp_path):
    honest = _honest_updates()
    agg = CoordinateMedian(buffer='disk', buffer_dir=str(tmp_path),
                           chunk_size=1000)
    out = _aggregate(agg, honest)
    assert 'queue' not in out  # client-local keys stay local
    assert out['bn.num_batches_tracked'].item() == 7  # median of 5..9
    assert torch.allclose(out['bn.running_mean'], torch.full((4, ), 2.0))
    assert os.listdir(str(tmp_path)) == []  # the round's files are gone
    mem = _aggregate(CoordinateMedian(), honest)
    assert torch.equal(out['w'], mem['w'])
    with pytest.raises(ValueError, match='trim_ratio'):
        TrimmedMean(trim_ratio=0.5)
    with pytest.raises(ValueError, match='buffer'):
        CoordinateMedian(buffer='gpu')
    with pytest.raises(ValueError, match='clip_factor'):
        NormClippedFedAvg(clip_factor=0)
    with pytest.raises(ValueError, match='chunk_size'):
        TrimmedMean(chunk_size=0)


def test_empty_round_leaves_global_unchanged():
    for agg in (CoordinateMedian(), NormClippedFedAvg()):
        agg.select_keys(list(_global()))
        agg.begin_round(_global())
        assert agg.finalize() is None


# ------------------------------------------------ few clients, trimming
@pytest.mark.parametrize('value', [0.5, -0.1, 0.7, float('nan'), '0.2',
                                   True])
def test_trim_ratio_validated_at_construction(value):
    with pytest.raises(ValueError, match=r'train_cfg\.aggregator\.trim_ratio'):
        TrimmedMean(trim_ratio=value)


@pytest.mark.parametrize('m', [2, 3, 4])
def test_trimming_nothing_is_refused_before_training(m):
    agg = TrimmedMean(trim_ratio=0.2)
    with pytest.raises(ValueError,
                       match=rf'trim_ratio=0.2 with {m} clients per round'):
        agg.check_clients_per_round(m)
    TrimmedMean(trim_ratio=0.2, allow_no_trim=True).check_clients_per_round(m)
    TrimmedMean(trim_ratio=0.2).check_clients_per_round(5)
    if m > 2:  # two clients can never be trimmed
        TrimmedMean(trim_ratio=1 / m).check_clients_per_round(m)
    with pytest.raises(ValueError, match='clients per round'):
        agg.check_clients_per_round(0)


def test_trim_ratio_near_half_keeps_a_value():
    agg = TrimmedMean(trim_ratio=0.4999999999, exclude=[])
    with pytest.raises(ValueError, match='leaves none'):
        agg.check_clients_per_round(2)
    with pytest.raises(ValueError, match='leaves none'):
        TrimmedMean(trim_ratio=0.4999999999,
                    allow_no_trim=True).check_clients_per_round(2)
    agg.select_keys(['w'])
    agg.begin_round({'w': torch.zeros(2)})
    agg.add(0, {'w': torch.tensor([1.0, 2.0])}, 1)
    agg.add(1, {'w': torch.tensor([3.0, 4.0])}, 1)
    out = agg.finalize()['w']
    assert torch.equal(out, torch.tensor([2.0, 3.0]))  # never NaN


def test_round_too_small_to_trim_warns(monkeypatch):
    logged = []
    monkeypatch.setattr(trimmed_mean, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    agg = TrimmedMean(trim_ratio=0.2, exclude=[])
    agg.check_clients_per_round(5)
    agg.select_keys(['w'])
    for n in (5, 4, 5, 3):  # clients surviving each round
        agg.begin_round({'w': torch.zeros(1)})
        for i in range(n):
            agg.add(i, {'w': torch.tensor([float(i)])}, 1)
        agg.finalize()
    assert len(logged) == 2
    assert all(kw.get('level') == logging.WARNING
               and kw.get('logger') == 'current' for _, kw in logged)
    assert '4 clients' in logged[0][0] and '3 clients' in logged[1][0]


# ------------------------------------------------------- integer buffers
@pytest.mark.parametrize('cfg,expect', [
    (dict(type='CoordinateMedian'), 10),
    (dict(type='TrimmedMean', trim_ratio=0.2), 10),
    (dict(type='NormClippedFedAvg'), 10),
    (dict(type='FedAvg'), 10**12),  # documented: the maximum
])
def test_integer_buffer_not_dragged_by_one_client(cfg, expect):
    honest = _honest_updates()
    agg = AGGREGATORS.build(cfg)
    g = _global()
    agg.select_keys(list(g))
    agg.begin_round(g)
    for i, d in enumerate(honest):
        c = _client(d, i)
        c['bn.num_batches_tracked'] = torch.tensor(10**12 if i == 4 else 10)
        agg.add(i, c, 10)
    out = agg.finalize()['bn.num_batches_tracked']
    assert out.dtype == torch.int64 and out.item() == expect


def test_integer_trimmed_mean_and_even_median_round_down():
    def run(agg, vals):
        agg.select_keys(['n'])
        agg.begin_round({'n': torch.tensor([0, 0])})
        for i, v in enumerate(vals):
            agg.add(i, {'n': torch.tensor(v)}, 1)
        return agg.finalize()['n'].tolist()

    vals = [[1, 100], [2, 7], [4, 8], [1000, 9], [-5, 3]]
    assert run(TrimmedMean(trim_ratio=0.2, exclude=[]), vals) == [2, 8]
    assert run(CoordinateMedian(exclude=[]), vals[:4]) == [3, 8]


# ---------------------------------------------------------- disk buffers
def test_disk_buffer_lives_under_work_dir(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(buffered_aggregator, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    root = tmp_path / 'aggregator_buffers'
    (root / 'round_updates_r0_abc').mkdir(parents=True)
    (root / 'round_updates_r0_abc' / '000000.npy').write_bytes(b'x')
    (root / 'round_updates_r3_def').mkdir()  # a rank this run lacks
    (root / 'round_updates_old').mkdir()
    (root / 'notes.txt').write_text('kept')
    agg = CoordinateMedian(buffer='disk', chunk_size=1000)
    agg.setup(str(tmp_path))
    assert sorted(os.listdir(str(root))) == ['notes.txt']
    assert len(logged) == 1 and logged[0].startswith('Removed 3 ')
    g = _global()
    agg.select_keys(list(g))
    agg.begin_round(g)
    for i, d in enumerate(_honest_updates()):
        agg.add(i, _client(d, i), 10)
    kept = [n for n in os.listdir(str(root)) if n != 'notes.txt']
    assert len(kept) == 1 and kept[0].startswith('round_updates_r0_')
    assert len(os.listdir(str(root / kept[0]))) == 5
    agg.finalize()
    assert sorted(os.listdir(str(root))) == ['notes.txt']
    # nothing stale: nothing logged
    agg2 = TrimmedMean(buffer='disk')
    agg2.setup(str(tmp_path))
    assert len(logged) == 1
    # an explicit buffer_dir is kept as given
    own = tmp_path / 'own'
    agg3 = CoordinateMedian(buffer='disk', buffer_dir=str(own))
    agg3.setup(str(tmp_path))
    assert agg3.buffer.root == str(own)


def test_robust_export_statistics_under_fedbn():
    """Non-exchanged BN statistics: the median of the round's clients."""
    g = _global()
    g['bn.running_var'] = torch.ones(4)
    agg = CoordinateMedian(exclude=[r'(^|\.)bn\.'])
    agg.select_keys(list(g))
    assert agg.export_only_keys == ['bn.running_mean', 'bn.running_var']
    agg.begin_round(g)
    for i, d in enumerate(_honest_updates()):
        c = _client(d, i)
        c['bn.running_var'] = torch.full((4, ), 1e6 if i == 4 else 1.0 + i)
        agg.add(i, c, 10)
    out = agg.finalize()
    assert torch.equal(out['bn.running_var'], torch.full((4, ), 3.0))
    assert torch.equal(out['bn.running_mean'], torch.full((4, ), 2.0))
    assert 'bn.num_batches_tracked' not in out


# ------------------------------------------------------ torch.distributed
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


_SPLITS = {'3+2': ([0, 1, 2], [3, 4]), '5+0': ([0, 1, 2, 3, 4], [])}
_DIST_CFGS = [
    dict(type='CoordinateMedian', chunk_size=999),
    dict(type='TrimmedMean', trim_ratio=0.2, buffer='disk', chunk_size=1234),
    dict(type='NormClippedFedAvg', clip_factor=1.0),
    # FedBN: BN statistics gathered for the exported model
    dict(type='CoordinateMedian', exclude=[r'(^|\.)bn\.']),
    dict(type='FedAvg', exclude=[r'(^|\.)bn\.']),
]


def _dist_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    os.environ['OMP_NUM_THREADS'] = '1'
    dist.init_process_group('gloo', rank=rank, world_size=2,
                            init_method=f'tcp://127.0.0.1:{port}')
    import decssl_mm  # noqa: F401
    from decssl_mm.registry import AGGREGATORS as REG
    bad = _attack(_honest_updates(), 'scaled_x1000')
    results = {}
    for split, shares in _SPLITS.items():
        for i, cfg in enumerate(_DIST_CFGS):
            agg = REG.build(cfg)
            g = _global()
            agg.select_keys(list(g))
            agg.begin_round(g)
            for k in shares[rank]:
                agg.add(k, _client(bad[k], k), 10 + k)
            results[f'{split}/{i}'] = agg.finalize()
    torch.save(results, osp.join(out, f'rank{rank}.pth'))
    dist.destroy_process_group()


def test_two_ranks_equal_one_process(tmp_path):
    """Updates are gathered across ranks (uneven shares, an idle rank)."""
    ctx = mp.get_context('spawn')
    port = _free_port()
    procs = [ctx.Process(target=_dist_worker, args=(r, port, str(tmp_path)))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        if p.is_alive():
            p.kill()
    assert all(p.exitcode == 0 for p in procs)
    bad = _attack(_honest_updates(), 'scaled_x1000')
    for r in range(2):
        got = torch.load(str(tmp_path / f'rank{r}.pth'), weights_only=True)
        for split in _SPLITS:
            for i, cfg in enumerate(_DIST_CFGS):
                single = _aggregate(AGGREGATORS.build(cfg), bad,
                                    [10 + k for k in range(5)])
                assert 'bn.running_mean' in single
                for key, v in single.items():
                    w = got[f'{split}/{i}'][key]
                    assert torch.allclose(v.double(), w.double(),
                                          atol=1e-6), (split, cfg, key)


# ------------------------------------------------------------ end to end
def _global_after_one_round(fmnist_root, work_dir, aggregator, attack=None):
    cfg = tiny_federated_cfg(
        'configs/decssl/simclr_r18_fmnist_dir0.1.py', fmnist_root, work_dir,
        rounds=1, num_clients=5, local_iters=2,
        extra={
            'train_cfg.type': 'AttackedTrainLoop',
            'train_cfg.aggregator': aggregator,
            'train_cfg.attackers': [4] if attack else [],
            'train_cfg.attack': attack or 'scale',
            'train_cfg.factor': 1000.0,
        })
    cfg.randomness = dict(seed=0, deterministic=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    keys = [k for k in loop.exchanged_keys
            if loop.global_state[k].is_floating_point()]
    return torch.cat([loop.global_state[k].double().reshape(-1)
                      for k in keys])


def test_end_to_end_one_malicious_client(fmnist_root, tmp_path):
    """Real local training of 5 clients; client 4 sends its update x1000
    (or x-1000). The robust aggregators stay near the honest FedAvg."""
    def run(name, agg, attack=None):
        return _global_after_one_round(fmnist_root, str(tmp_path / name),
                                       agg, attack)

    honest = run('honest', dict(type='FedAvg'))
    attacked = run('fedavg', dict(type='FedAvg'), 'scale')
    cfg0 = tiny_federated_cfg('configs/decssl/simclr_r18_fmnist_dir0.1.py',
                              fmnist_root, str(tmp_path / 'init'),
                              num_clients=5)
    cfg0.randomness = dict(seed=0, deterministic=True)
    r0 = Runner.from_cfg(cfg0)
    r0._init_model_weights()
    sd = r0.model.state_dict()
    init = torch.cat([sd[k].double().reshape(-1) for k in sd
                      if sd[k].is_floating_point()
                      and 'queue' not in k])
    step = (honest - init).norm()  # size of the honest round's update

    def dist(x):
        return float((x - honest).norm() / step)

    assert dist(attacked) > 100
    for name, agg, attack in [
        ('median', dict(type='CoordinateMedian'), 'scale'),
        ('trimmed', dict(type='TrimmedMean', trim_ratio=0.2), 'flip'),
        ('clipped', dict(type='NormClippedFedAvg'), 'scale'),
    ]:
        assert dist(run(name, agg, attack)) < 0.75, name
