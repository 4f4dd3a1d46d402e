"""The FMNIST-Det downstream configs and the downstream evaluation tool
(tools/analysis/downstream_eval.py, decssl_mm.study.downstream) on a tiny
generated set: one fine-tune iteration each, on CPU."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook

import decssl_mm  # noqa: F401  (registration)
from decssl_mm.datasets.fashion_mnist import DEFAULT_ROOT
from decssl_mm.study import downstream

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs', 'downstream', 'fmnist_det')
CONFIGS = [
    f'{det}-rcnn_r18w16-cifar_fpn_fmnist-det_{protocol}.py'
    for det in ('faster', 'mask') for protocol in ('ft', 'frozen')
]
TINY = {  # one image per batch is enough for one iteration
    'train_dataloader.batch_size': 2,
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'val_dataloader.num_workers': 0,
    'val_dataloader.persistent_workers': False,
    'test_dataloader.num_workers': 0,
    'test_dataloader.persistent_workers': False,
    'default_hooks.checkpoint': None,
    'log_level': 'WARNING',
    'model.test_cfg.rcnn.score_thr': 0.0,
}

pytestmark = pytest.mark.skipif(
    not osp.isfile(osp.join(DEFAULT_ROOT, 't10k-images-idx3-ubyte.gz')),
    reason='needs the Debian package dataset-fashion-mnist')


def _tool():
    path = osp.join(REPO, 'tools', 'analysis', 'downstream_eval.py')
    spec = importlib.util.spec_from_file_location('tool_downstream_eval',
                                                  path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory) -> dict:
    from decssl_mm.datasets.fmnist_det import make_fmnist_det
    return make_fmnist_det(str(tmp_path_factory.mktemp('fdet')),
                           num_train=4, num_val=2, seed=0)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory) -> str:
    """A 'pretrained' study backbone: seeded weights and BN statistics that
    no initialisation gives."""
    from mmpretrain.models.backbones import ResNet_CIFAR

    from decssl_mm.evaluation.export import save_backbone
    torch.manual_seed(5)
    net = ResNet_CIFAR(depth=18, stem_channels=16, base_channels=16)
    state = {k: v + 0.05 * torch.randn_like(v)
             if v.is_floating_point() else v
             for k, v in net.state_dict().items()}
    state = {k: v.abs() + 0.5 if k.endswith('running_var') else v
             for k, v in state.items()}
    path = str(tmp_path_factory.mktemp('bb') / 'pretrained.pth')
    save_backbone(state, dict(source='test', round=3), path)
    return path


def _bare(path: str) -> dict:
    obj = torch.load(path, weights_only=True)
    return {k[len('backbone.'):]: v for k, v in obj['state_dict'].items()}


class _Watch(Hook):
    """Backbone state at the start and after the first iteration."""

    def before_train(self, runner) -> None:
        self.start = {k: v.clone() for k, v in
                      runner.model.backbone.state_dict().items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.after = {k: v.clone() for k, v in
                      runner.model.backbone.state_dict().items()}


@pytest.mark.parametrize('config', CONFIGS)
def test_one_finetune_iteration(config, tiny_set, pretrained, tmp_path,
                                monkeypatch):
    path = osp.join(CONFIG_DIR, config)
    cfg = downstream.load_downstream_config(path, dict(TINY))
    assert cfg.model.backbone.type == 'mmpretrain.ResNet_CIFAR'
    assert cfg.model.backbone.base_channels == 16
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    downstream.set_iterations(cfg, 1, path)
    downstream.set_data_root(cfg, tiny_set['root'])
    watch = _Watch()
    from mmengine.runner import Runner
    real = Runner.from_cfg

    def from_cfg(c):
        runner = real(c)
        runner.register_hook(watch)
        return runner

    monkeypatch.setattr(Runner, 'from_cfg', from_cfg)
    metrics, _ = downstream.finetune(cfg, pretrained, 0, str(tmp_path),
                                     f'one_iter_{config}')
    expected = {'bbox_AP', 'bbox_AP50'} | (
        {'segm_AP', 'segm_AP50'} if config.startswith('mask') else set())
    assert set(metrics) == expected
    assert all(0.0 <= v <= 100.0 for v in metrics.values())
    file_state = _bare(pretrained)
    weights = [k for k in file_state if k.endswith('conv1.weight')]
    stats = [k for k in file_state if k.endswith('running_mean')]
    for k in weights:  # loaded from the file
        assert torch.equal(watch.start[k], file_state[k]), k
    if config.endswith('frozen.py'):
        # weights fixed; BN statistics re-estimated before training, then
        # fixed too
        for k in weights:
            assert torch.equal(watch.after[k], file_state[k]), k
        assert not any(torch.equal(watch.start[k], file_state[k])
                       for k in stats)
        for k in stats:
            assert torch.equal(watch.after[k], watch.start[k]), k
    else:  # full fine-tune: weights and BN statistics move
        assert not all(torch.equal(watch.after[k], file_state[k])
                       for k in weights)
        assert not any(torch.equal(watch.after[k], watch.start[k])
                       for k in stats)


def test_tool_records_hold_references(tiny_set, pretrained, tmp_path,
                                      capsys):
    tool = _tool()
    out = str(tmp_path / 'records.jsonl')
    config = osp.join(CONFIG_DIR, CONFIGS[1])  # Faster R-CNN, frozen
    common = [config, '--seeds', '0', '--max-iters', '1', '--data-root',
              tiny_set['root'], '--out', out, '--work-dir',
              str(tmp_path / 'work'), '--cfg-options'] + [
                  f'{k}={v}' for k, v in TINY.items()]
    assert tool.main(common + ['--backbone', f'dec={pretrained}']) == 0
    recs = [json.loads(line) for line in open(out)]
    assert len(recs) == 1
    rec = recs[0]
    assert rec['method'] == 'dec' and rec['seed'] == 0
    assert rec['format'] == downstream.RECORD_FORMAT
    assert set(rec['references']) == {'untrained_init', 'untrained_default'}
    for ref in rec['references'].values():
        assert set(ref) == {'bbox_AP', 'bbox_AP50'}
    assert set(rec['metrics']) == {'bbox_AP', 'bbox_AP50'}
    assert rec['max_iters'] == 1
    assert rec['backbone']['source'].endswith('pretrained.pth')
    assert set(rec['reference_finetune_s']) == set(rec['references'])
    # A second backbone reuses the references of the same config and seed.
    assert tool.main(common + ['--backbone', f'other={pretrained}']) == 0
    recs = [json.loads(line) for line in open(out)]
    assert len(recs) == 2 and recs[1]['method'] == 'other'
    assert recs[1]['references'] == rec['references']
    assert recs[1]['reference_finetune_s'] == {}
    # The table from the records alone.
    capsys.readouterr()
    assert tool.main(['--table', out]) == 0
    table = capsys.readouterr().out
    assert '| faster-rcnn_r18w16-cifar_fpn_fmnist-det_frozen | dec |' in table
    assert 'not resolved (1 seed)' in table


def test_tool_bad_inputs(tiny_set, tmp_path, capsys):
    tool = _tool()
    config = osp.join(CONFIG_DIR, CONFIGS[0])
    assert tool.main([config, '--backbone', 'nolabel']) == 1
    assert 'LABEL=CHECKPOINT' in capsys.readouterr().err
    missing = str(tmp_path / 'missing.pth')
    assert tool.main([config, '--backbone', f'x={missing}', '--out',
                      str(tmp_path / 'r.jsonl')]) == 1
    assert 'missing.pth' in capsys.readouterr().err
    # An ImageNet-stem backbone does not fit the study's CIFAR-stem config.
    from mmpretrain.models.backbones import ResNet

    from decssl_mm.evaluation.export import save_backbone
    wrong = str(tmp_path / 'imagenet_r18.pth')
    save_backbone(ResNet(depth=18).state_dict(), dict(source='x', round=1),
                  wrong)
    assert tool.main([config, '--backbone', f'x={wrong}', '--out',
                      str(tmp_path / 'r.jsonl')]) == 1
    err = capsys.readouterr().err
    assert 'imagenet_r18.pth' in err and 'stem' in err
    assert not osp.exists(tmp_path / 'r.jsonl')
    with pytest.raises(ValueError, match='train_cfg.*IterBasedTrainLoop'):
        cfg = downstream.load_downstream_config(config)
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
        downstream.set_iterations(cfg, 1, config)


def _rec(method, seed, value, refs):
    return dict(format=downstream.RECORD_FORMAT, status='ok',
                key=f'{method}{seed}', method=method, seed=seed,
                config='configs/x.py', metrics=dict(bbox_AP=value),
                references=dict(untrained_init=dict(bbox_AP=refs[0]),
                                untrained_default=dict(bbox_AP=refs[1])))


def test_verdicts_by_two_sigma():
    recs = [_rec('good', s, 20 + s, (10, 12 + s)) for s in range(3)]
    recs += [_rec('bad', s, 5 - s, (10, 8)) for s in range(3)]
    recs += [_rec('noisy', s, v, (10, 9)) for s, v in
             enumerate((14, 6, 11))]
    recs += [_rec('one', 0, 30, (10, 9))]
    rows = {r['method']: r for r in downstream.downstream_rows(recs)}
    assert rows['good']['margins'] == [8, 8, 8] and \
        rows['good']['verdict'] == downstream.BEATS
    assert rows['bad']['verdict'] == downstream.BELOW
    assert rows['noisy']['verdict'] == downstream.UNRESOLVED
    assert rows['one']['verdict'] == 'not resolved (1 seed)'
    # a later record of the same key replaces the earlier one
    recs.append(_rec('good', 2, 0, (10, 14)))
    rows = {r['method']: r for r in downstream.downstream_rows(recs)}
    assert rows['good']['margins'] == [8, 8, -14]
    assert rows['good']['verdict'] == downstream.UNRESOLVED
    table = downstream.downstream_table(recs)
    assert '| x | good | bbox_AP | 3 |' in table


def test_figure_of_each_backbone_beside_the_untrained(tmp_path):
    from decssl_mm.study.downstream_figure import (downstream_figure,
                                                   figure_series)
    recs = [_rec('good', s, 20 + s, (10, 12 + s)) for s in range(3)]
    recs += [_rec('one', 0, 30, (10, 12))]  # the references of seed 0
    recs += [dict(_rec('noref', 0, 30, (10, 9)), references={})]
    bars = dict(figure_series(recs, 'bbox_AP')['x'])
    assert list(bars) == ['good', 'one', 'untrained (model init)',
                          'untrained (PyTorch default)']  # noref left out
    assert bars['good'] == [20, 21, 22] and bars['one'] == [30]
    assert bars['untrained (PyTorch default)'] == [12, 13, 14]
    out = downstream_figure(recs, str(tmp_path / 'f' / 'det.png'))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match='metric must be one of'):
        figure_series(recs, 'AP')
    with pytest.raises(ValueError, match='no downstream record with '
                       'segm_AP'):
        downstream_figure(recs, str(tmp_path / 'g.png'), 'segm_AP')
