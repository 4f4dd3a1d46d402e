"""tools/partition.py and benchmarks/bench_partition.py end to end."""
import importlib.util
import json
import os.path as osp
import runpy
import sys

import numpy as np
import pytest

from decssl_mm.partition import Partition

from .test_client_dataset import write_image_folder

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'decssl_tools_partition', osp.join(ROOT, 'tools', 'partition.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_documents_options(capsys):
    tool = load_tool()
    with pytest.raises(SystemExit) as info:
        tool.parse_args(['--help'])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ('--config', '--labels', '--recipe', '--features', '--out',
                   '--plot-dir', '--dataset-key', '--cfg-options',
                   '--max-rows'):
        assert option in text


def test_labels_and_recipe(tmp_path, capsys):
    labels = np.random.default_rng(0).integers(0, 5, 400)
    np.save(tmp_path / 'labels.npy', labels)
    out = tmp_path / 'part.json'
    plots = tmp_path / 'plots'
    recipe = json.dumps(dict(type='Dirichlet', num_clients=4, alpha=0.2))
    assert load_tool().main([
        '--labels', str(tmp_path / 'labels.npy'), '--recipe', recipe,
        '--out', str(out), '--plot-dir', str(plots)
    ]) == 0
    text = capsys.readouterr().out
    assert 'mean label entropy' in text and 'EMD' in text
    part = Partition.load(str(out))
    assert part.num_clients == 4 and part.client_sizes.sum() == 400
    for name in ('client_label_heatmap.png', 'client_sizes.png'):
        assert (plots / name).read_bytes()[:4] == b'\x89PNG'


def test_bad_arguments_exit():
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args(['--labels', 'x.npy'])
    with pytest.raises(SystemExit):
        tool.parse_args(['--labels', 'x.npy', '--recipe', '{bad'])
    with pytest.raises(SystemExit):
        tool.parse_args([])


def test_config(tmp_path, capsys):
    root = str(tmp_path / 'images')
    write_image_folder(root)
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f'''
custom_imports = dict(imports=['decssl_mm'], allow_failed_imports=False)
default_scope = 'decssl_mm'
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        type='ClientPartitionedDataset',
        dataset=dict(type='CustomDataset', data_root={root!r}, pipeline=[]),
        partition=dict(type='Dirichlet', num_clients=3, alpha=1.0,
                       min_size=0, seed=0)))
''')
    out = tmp_path / 'p.json'
    tool = load_tool()
    assert tool.main(['--config', str(cfg_file), '--out', str(out)]) == 0
    assert '"type": "Dirichlet"' in capsys.readouterr().out
    assert Partition.load(str(out)).client_sizes.sum() == 12
    tool.main([
        '--config', str(cfg_file), '--out', str(out), '--recipe',
        '{"type": "IID", "num_clients": 2}'
    ])
    assert Partition.load(str(out)).client_sizes.tolist() == [6, 6]
    tool.main([
        '--config', str(cfg_file), '--out', str(out), '--cfg-options',
        'train_dataloader.dataset.partition.num_clients=4'
    ])
    assert Partition.load(str(out)).num_clients == 4
    with pytest.raises(ValueError, match='ClientPartitionedDataset'):
        tool.main([
            '--config', str(cfg_file), '--dataset-key',
            'train_dataloader.dataset.dataset'
        ])


def test_benchmark_runs_small(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [
        'bench_partition.py', '--samples', '20000', '--classes', '50',
        '--clients', '40', '--repeat', '1'
    ])
    runpy.run_path(
        osp.join(ROOT, 'benchmarks', 'bench_partition.py'),
        run_name='__main__')
    text = capsys.readouterr().out
    assert 'Dirichlet' in text and ' s ' in text
