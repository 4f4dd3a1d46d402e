"""Model bases say their stem, and a stem that does not fit the training
crops gets a WARNING before training."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from decssl_mm.utils import stem_check
from decssl_mm.utils.stem_check import stem_mismatch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ALGOS = ['barlowtwins', 'byol', 'densecl', 'mocov2', 'mocov3', 'simclr',
         'simsiam', 'swav']


def _cfg(crop, backbone):
    return Config(dict(
        model=dict(type='MoCo', backbone=dict(type=backbone, depth=18)),
        train_dataloader=dict(dataset=dict(dataset=dict(pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2, transforms=[[
                dict(type='RandomResizedCrop', scale=crop),
                dict(type='PackInputs')
            ]])
        ])))))


@pytest.mark.parametrize('algo', ALGOS)
def test_model_bases_name_their_stem(algo):
    base = osp.join(ROOT, 'configs', '_base_', 'models')
    assert not osp.exists(osp.join(base, f'{algo}_r18.py'))
    cifar = Config.fromfile(osp.join(base, f'{algo}_r18-cifar.py'))
    imagenet = Config.fromfile(osp.join(base, f'{algo}_r18-imagenet.py'))
    assert cifar.model.backbone.type == 'ResNet_CIFAR'
    assert imagenet.model.backbone.type == 'ResNet'
    assert imagenet.model.backbone.depth == 18


def test_cifar_stem_on_large_crops_warned():
    msg = stem_mismatch(_cfg(224, 'ResNet_CIFAR'))
    assert 'ResNet_CIFAR' in msg and '224 px' in msg and '16x' in msg
    assert stem_mismatch(_cfg(224, 'ResNet')) is None
    assert stem_mismatch(_cfg(32, 'ResNet_CIFAR')) is None


def test_imagenet_stem_on_32px_warned():
    msg = stem_mismatch(_cfg(32, 'ResNet'))
    assert 'ImageNet stem' in msg and '32 px' in msg and '1x1' in msg


def test_check_config_warns(monkeypatch):
    from decssl_mm.utils import config_check
    seen = []
    monkeypatch.setattr(stem_check, 'print_log',
                        lambda msg, **kw: seen.append(msg))
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/decssl/mocov2_r18_fmnist_dir0.1.py'))
    cfg.model.backbone.type = 'ResNet_CIFAR'
    for node in stem_check._walk(cfg.train_dataloader):
        if node.get('type') == 'RandomResizedCrop':
            node['scale'] = 200
    monkeypatch.setattr(config_check, 'check_dataset_paths', lambda c: None)
    config_check.check_config(cfg)
    assert len(seen) == 1 and '200 px' in seen[0]


@pytest.mark.parametrize('path', sorted(
    osp.relpath(p, ROOT) for pat in ('configs/decssl/*.py',
                                     'configs/featarc/*.py',
                                     'configs/study/*.py')
    for p in glob.glob(osp.join(ROOT, pat))))
def test_project_configs_fit_their_stem(path):
    assert stem_mismatch(Config.fromfile(osp.join(ROOT, path))) is None
