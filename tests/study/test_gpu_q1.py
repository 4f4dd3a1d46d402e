"""tools/analysis/gpu_study_q1.sh --tiny: the GPU Q1 script end to end on the
CPU at 200 images (the same sweeps, tables and files).

About 2-3 minutes on the shared 2-core machine (three sweep processes, eight
runs with their untrained references, two plot processes), so it runs only
with ``DECSSL_SLOW_TESTS=1``; the same check by hand:
``PY=.venv/bin/python bash tools/analysis/gpu_study_q1.sh --tiny``.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from _helpers.data import write_fake_fashion_mnist

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis', 'gpu_study_q1.sh')


@pytest.mark.skipif(not os.environ.get('DECSSL_SLOW_TESTS'),
                    reason='2-3 minutes; set DECSSL_SLOW_TESTS=1')
def test_tiny_q1_writes_results_and_tables(tmp_path):
    data = tmp_path / 'fmnist'
    data.mkdir()
    write_fake_fashion_mnist(str(data), num_train=200, num_test=100)
    out = tmp_path / 'out'
    env = dict(os.environ, PY=sys.executable, OUT=str(out),
               DATA_ROOT=str(data), OMP_NUM_THREADS='1',
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH',
                                                            ''))
    for k in [k for k in env if k.startswith('STUDY_')]:
        del env[k]
    proc = subprocess.run(['bash', SCRIPT, '--tiny'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / 'results.jsonl') as f:
        recs = [json.loads(line) for line in f if line.strip()]
    got = {(r['method'], r['fields']['partition']) for r in recs}
    assert got == {(m, p) for m in ('Dec-SSL/SimCLR', 'Dec-SL')
                   for p in ('iid', 'dir0.1', 'dir0.02')} | {
                       ('Central/SimCLR', 'iid'), ('Central/SL', 'iid')}
    for r in recs:
        assert r['status'] == 'ok'
        assert r['fields']['train_subset'] == 200
        assert r['fields']['width'] == 8 and r['rounds'] == 1
        for name in ('untrained_init', 'untrained_default'):
            assert 'linear_top1' in r['references'][name]
        assert r['code_version']
    dirichlet = [r for r in recs if r['fields']['partition'] == 'dir0.02']
    part = dirichlet[0]['overrides']['train_dataloader.dataset.partition']
    assert part['size_range'] == [0.5, 1.5]  # the paper's draw
    for m in ('linear_top1', 'knn_top1'):
        table = (out / f'q1_{m}.md').read_text()
        assert 'Dec-SSL/SimCLR' in table and 'Dec-SLRep' in table
        assert 'dir0.02' in table and 'untrained' in table
    assert 'finished' in (out / 'env.txt').read_text()
