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
