"""Untrained references: beside every figure, the same network untrained."""
import importlib.util
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import decssl_mm  # noqa: F401
from decssl_mm.evaluation import (build_untrained_model, evaluate_checkpoint,
                                  find_eval_loaders)
from decssl_mm.utils.io import atomic_torch_save
from ._tiny import SIMCLR, tiny_study_cfg
from _helpers.configs import dump_eval_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_untrained_models_are_seeded_and_leave_the_rng_alone(fmnist_root,
                                                             tmp_path):
    init_default_scope('decssl_mm')
    cfg = tiny_study_cfg(SIMCLR, fmnist_root, str(tmp_path))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    init_a = build_untrained_model(cfg, 'model', seed=5)
    assert torch.equal(torch.rand(3), expected)  # caller's stream unchanged
    init_b = build_untrained_model(cfg, 'model', seed=5)
    default = build_untrained_model(cfg, 'default', seed=5)
    other_seed = build_untrained_model(cfg, 'model', seed=6)
    assert _states_equal(init_a, init_b)  # reproducible
    assert not _states_equal(init_a, default)  # init_weights() matters
    assert not _states_equal(init_a, other_seed)
    # the model's own init: BatchNorm weights constant 1, PyTorch's too; the
    # convolutions differ (Kaiming fan-out vs the default uniform)
    w_init = init_a.backbone.conv1.weight
    w_default = default.backbone.conv1.weight
    k = w_default.shape[-1]  # conv1 kernel (3 for the CIFAR stem)
    assert w_default.abs().max() <= 1 / math.sqrt(3 * k * k) + 1e-6
    assert w_init.abs().max() > w_default.abs().max()
    with pytest.raises(ValueError, match="'model' or 'default'"):
        build_untrained_model(cfg, 'xavier')


@pytest.fixture(scope='module')
def hook_run(fmnist_root, tmp_path_factory):
    """Two rounds of the tiny SimCLR with a KNNEvalHook that finds the
    config's evaluation loaders itself."""
    work = str(tmp_path_factory.mktemp('hook_run'))
    cfg = tiny_study_cfg(SIMCLR, fmnist_root, work, rounds=2, local_iters=3)
    cfg.custom_hooks = [dict(type='KNNEvalHook', k=20)]
    cfg.log_level = 'INFO'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return dict(cfg=cfg, runner=runner, ckpt=osp.join(work, 'epoch_2.pth'),
                work=work)


def test_hook_logs_references_beside_the_trained_figure(hook_run):
    runner = hook_run['runner']
    hub = runner.message_hub
    trained = hub.get_scalar('knn/top1').current()
    init = hub.get_scalar('knn/top1_untrained_init').current()
    default = hub.get_scalar('knn/top1_untrained_default').current()
    for value in (trained, init, default):
        assert 0.0 <= value <= 100.0
    for key in ('knn/top5_untrained_init', 'knn/top5_untrained_default'):
        assert 0.0 <= hub.get_scalar(key).current() <= 100.0
    # computed once (cached), logged at both rounds: two values each
    history = hub.get_scalar('knn/top1_untrained_init').data[0]
    assert len(history) == 2 and history[0] == history[1]
    log = [f for f in runner.logger.handlers
           if hasattr(f, 'baseFilename')][0].baseFilename
    with open(log) as f:
        lines = [line for line in f if 'kNN' in line]
    assert lines[-1].rstrip().endswith(
        f'kNN top-1 {trained:.2f} (untrained: {init:.2f} model init, '
        f'{default:.2f} PyTorch default init)')


def test_evaluate_checkpoint_reports_references(hook_run):
    cfg, ckpt = hook_run['cfg'], hook_run['ckpt']
    cache = {}
    result = evaluate_checkpoint(cfg, ckpt, knn=dict(k=20),
                                 probe=dict(epochs=5), seed=0, cache=cache)
    metrics, info = result['metrics'], result['info']
    refs = result['references']
    assert info['loaded'] == 'backbone' and info['round'] == 2
    assert info['num_train'] == 120 and info['num_test'] == 60
    base = ('knn_top1', 'knn_top5', 'linear_top1', 'linear_top5',
            'linear_train_top1')
    assert set(metrics) == set(base)
    assert set(refs) == {'untrained_init', 'untrained_default'}
    for key in base:
        assert math.isfinite(metrics[key]), key
        for name, ref in refs.items():
            assert math.isfinite(ref[key]), (name, key)
    # the trained network, its start and random features: three networks
    trained = [metrics[k] for k in base]
    init = [refs['untrained_init'][k] for k in base]
    default = [refs['untrained_default'][k] for k in base]
    assert trained != init and trained != default and init != default
    # same figures as the hook for the same network, seed and data
    hub = hook_run['runner'].message_hub
    assert metrics['knn_top1'] == pytest.approx(
        hub.get_scalar('knn/top1').current(), abs=1e-3)
    assert refs['untrained_init']['knn_top1'] == pytest.approx(
        hub.get_scalar('knn/top1_untrained_init').current(), abs=1e-3)
    # cached: the second call reuses the references
    assert len(cache) == 1
    again = evaluate_checkpoint(cfg, ckpt, knn=dict(k=20),
                                probe=dict(epochs=5), seed=0, cache=cache)
    assert again['metrics'] == metrics and len(cache) == 1
    assert again['references'] == refs
    # the untrained model itself equals its reference
    init_only = evaluate_checkpoint(cfg, None, evals=('knn', ),
                                    knn=dict(k=20), references=False)
    assert init_only['metrics']['knn_top1'] == \
        refs['untrained_init']['knn_top1']
    assert set(init_only['metrics']) == {'knn_top1', 'knn_top5'}
    assert init_only['references'] == {}


def _tool(name):
    path = osp.join(ROOT, 'tools', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_eval_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_knn_eval_tool_prints_references(hook_run, tmp_path, capsys):
    cfg = hook_run['cfg']
    path = dump_eval_cfg(cfg, str(tmp_path / 'eval_cfg.py'))
    tool = _tool('knn_eval')
    metrics = tool.main([path, hook_run['ckpt'], '--k', '20'])
    hub = hook_run['runner'].message_hub
    assert metrics['top1'] == pytest.approx(
        hub.get_scalar('knn/top1').current(), abs=1e-3)
    out = capsys.readouterr().out
    init = hub.get_scalar('knn/top1_untrained_init').current()
    assert f'kNN top-1 {metrics["top1"]:.2f} (untrained: {init:.2f} model ' \
        'init, ' in out
    # a config without evaluation loaders: a clear error before any work
    bare = str(tmp_path / 'bare_cfg.py')
    Config(dict(model=cfg.model.to_dict())).dump(bare)
    with pytest.raises(SystemExit, match='bare_cfg.py: no evaluation data'):
        tool.main([bare, hook_run['ckpt']])
    assert find_eval_loaders(Config.fromfile(path))[0]['batch_size'] == 64


def test_reference_keys_in_an_extracted_backbone_run(hook_run, tmp_path):
    """An extracted backbone file is evaluated like its checkpoint."""
    from decssl_mm.evaluation.export import (backbone_file_content,
                                             extract_backbone_state)
    state, info = extract_backbone_state(hook_run['ckpt'])
    path = str(tmp_path / 'backbone.pth')
    atomic_torch_save(backbone_file_content(state, info), path)
    kwargs = dict(evals=('knn', ), knn=dict(k=20), seed=0)
    a = evaluate_checkpoint(hook_run['cfg'], path, **kwargs)
    b = evaluate_checkpoint(hook_run['cfg'], hook_run['ckpt'], **kwargs)
    assert a['metrics'] == b['metrics']
    assert a['references'] == b['references']
    assert 'knn_top1' in a['references']['untrained_default']


def test_bn_reestimated_figures_stand_beside_the_plain_ones(hook_run):
    """``*_bnre`` evaluations: the same protocol after re-estimating the
    BatchNorm statistics of a copy, for the trained network and both
    untrained references; the plain figures are unchanged by asking."""
    cfg, ckpt = hook_run['cfg'], hook_run['ckpt']
    kwargs = dict(knn=dict(k=20), probe=dict(epochs=5), seed=0)
    plain = evaluate_checkpoint(cfg, ckpt, evals=('knn', 'linear'),
                                **kwargs)
    both = evaluate_checkpoint(
        cfg, ckpt, evals=('knn', 'linear', 'knn_bnre', 'linear_bnre'),
        **kwargs)
    for key, value in plain['metrics'].items():
        assert both['metrics'][key] == value, key
    for name in ('untrained_init', 'untrained_default'):
        refs = both['references'][name]
        assert {'knn_bnre_top1', 'linear_bnre_top1'} <= set(refs), name
        for key, value in plain['references'][name].items():
            assert refs[key] == value, (name, key)
    # the model's own initial statistics (mean 0, var 1) describe nothing:
    # re-estimating them changes its features, hence its kNN figure
    init = both['references']['untrained_init']
    assert init['knn_bnre_top1'] != init['knn_top1']
    assert math.isfinite(both['metrics']['linear_bnre_top1'])
    assert both['info']['bnre_s'] >= 0
    with pytest.raises(ValueError, match="unknown evaluation 'probe_bnre'"):
        evaluate_checkpoint(cfg, ckpt, evals=('probe_bnre', ), **kwargs)
