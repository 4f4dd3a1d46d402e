"""benchmarks/gpu_round.py, the prepared GPU check, at its tiny CPU size."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_gpu_round_runs_on_cpu_at_tiny_size(fmnist_root, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'gpu_round.py'),
         '--device', 'cpu', '--tiny', '--clients', '4', '--images', '64',
         '--data', fmnist_root, '--out', str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'paired median' in out.stdout
    assert '% of the round' in out.stdout
    res = json.load(open(tmp_path / 'gpu_round.json'))
    tp, agg = res['throughput'], res['aggregation']
    assert res['device'] == 'cpu' and tp['precision'] == 'fp32'
    assert len(tp['ratios']) == 1 and tp['ratio_median'] > 0
    assert tp['federated'][0] > 0 and tp['centralized'][0] > 0
    # three rounds of the ResNet-50-form model, the aggregation inside each
    assert len(agg['rounds']) == 3
    assert all(0 < r['agg_s'] < r['round_s'] for r in agg['rounds'])
    assert 0 < agg['share_median'] < 1
