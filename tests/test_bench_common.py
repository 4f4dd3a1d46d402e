"""benchmarks/_common.py: paired A-vs-B runs and the machine line."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load_common():
    spec = importlib.util.spec_from_file_location(
        'bench_common', osp.join(ROOT, 'benchmarks', '_common.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


def test_pair_orders_alternate():
    assert common.pair_orders(1) == ['AB']
    assert common.pair_orders(4) == ['AB', 'BA', 'AB', 'BA']
    with pytest.raises(ValueError, match='pairs'):
        common.pair_orders(0)


def test_run_pairs_alternates_and_pairs_values():
    calls = []
    a_values = [2.0, 4.0, 5.0]
    b_values = [3.0, 4.0, 10.0]

    def run_a(i):
        calls.append(f'a{i}')
        return a_values[i]

    def run_b(i):
        calls.append(f'b{i}')
        return b_values[i]

    runs = common.run_pairs(run_a, run_b, 3, 'old', 'new')
    assert calls == ['a0', 'b0', 'b1', 'a1', 'a2', 'b2']
    assert runs.orders == ['AB', 'BA', 'AB']
    assert runs.a == a_values and runs.b == b_values
    assert runs.ratios == pytest.approx([1.5, 1.0, 2.0])
    assert runs.median == pytest.approx(1.5)
    assert runs.range == pytest.approx((1.0, 2.0))
    assert runs.differences == pytest.approx([1.0, 0.0, 5.0])
    lines = runs.lines(' s', '.1f')
    assert lines[1] == 'pair 2 (BA): old 4.0 s, new 4.0 s, ratio 1.000'
    summary = runs.summary('round time')
    assert summary.startswith('round time (new / old): paired median 1.500')
    assert 'range 1.000 to 2.000 over 3 pairs' in summary
    assert 'AB,BA,AB' in summary
    diff = runs.summary('top-1', kind='difference')
    assert 'top-1 (new - old): paired median 1.000' in diff
    assert 'range 0.000 to 5.000' in diff
    with pytest.raises(ValueError, match='kind'):
        runs.summary('x', kind='mean')


def test_median_of_an_even_number_of_pairs():
    runs = common.PairedRuns([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 8.0],
                             common.pair_orders(4))
    assert runs.median == pytest.approx(2.5)
    assert runs.range == pytest.approx((1.0, 8.0))


def test_machine_line_names_cores_threads_torch_device():
    import torch
    info = common.machine_info()
    assert info['cores'] >= 1 and info['usable_cores'] >= 1
    assert info['torch'] == torch.__version__
    assert info['torch_threads'] == torch.get_num_threads()
    line = common.machine_line()
    for part in ('cores', 'OMP_NUM_THREADS', 'torch threads',
                 f'torch {torch.__version__}', 'device'):
        assert part in line


def test_stopwatch_splits_time_inside_and_outside_the_steps():
    import time
    w = common.Stopwatch()
    w.before_train(None)
    for _ in range(3):
        time.sleep(0.01)  # outside: data loading, client bookkeeping
        w.before_train_iter(None, 0)
        time.sleep(0.02)  # inside: the step
        w.after_train_iter(None, 0, {'data_samples': [0, 1]})
    w.after_train(None)
    assert w.images == 6 and w.iters == 3
    assert 0.06 <= w.step_seconds < w.seconds
    assert w.outside_seconds == pytest.approx(w.seconds - w.step_seconds)
    assert w.outside_seconds >= 0.03


def test_overhead_accounting_per_client_and_equal_step_ratio(monkeypatch):
    monkeypatch.syspath_prepend(osp.join(ROOT, 'benchmarks'))
    spec = importlib.util.spec_from_file_location(
        'bench_federated_overhead',
        osp.join(ROOT, 'benchmarks', 'bench_federated_overhead.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def watch(total, steps):
        w = common.Stopwatch()
        w.seconds, w.step_seconds = total, steps
        return w

    # pair 1: the federated steps ran slower (machine drift), its outside
    # time is 1 s longer over 2 rounds x 100 clients: 5 ms a client
    cen = [watch(12.0, 10.0), watch(13.0, 11.0)]
    fed = [watch(15.0, 12.0), watch(14.0, 11.0)]
    lines = bench.accounting(cen, fed, clients=100, rounds=2,
                             orders=['AB', 'BA'])
    assert '+5.00 ms a client' in lines[0]
    assert 'equal-step ratio 0.929' in lines[0]  # (11 + 2) / (11 + 3)
    assert lines[-1].startswith('federation cost outside the local steps')
