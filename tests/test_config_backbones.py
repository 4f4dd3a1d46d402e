"""32 px configs use ResNet_CIFAR (>= 4x4 at stage 4); others keep ResNet."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Configs of 32 px images (Fashion-MNIST, CIFAR) with a ResNet backbone.
SMALL_IMAGE_GLOBS = [
    'configs/decssl/*_r18_fmnist_*.py',
    'configs/featarc/*.py',
    'configs/baselines/*/*.py',
    'configs/reliability/*.py',
    'configs/study/*.py',
    'configs/benchmarks/knn/*.py',
    'configs/benchmarks/linear/resnet18_*.py',
]
#: Configs of large images (COCO, ImageNet, downstream) or of backbones
#: pretrained on them: the ImageNet stem stays.
LARGE_IMAGE_GLOBS = [
    'configs/decssl/*_coco_*.py',
    'configs/benchmarks/linear/resnet50_*.py',
    'configs/downstream/*/*.py',
]
#: Downstream configs of the study's own backbone (CIFAR form, width 16) on
#: the 96 px FMNIST-Det canvases: they must load the study's checkpoints.
STUDY_DOWNSTREAM_GLOB = 'configs/downstream/fmnist_det/*.py'


def _paths(patterns):
    return sorted(
        osp.relpath(p, ROOT) for pat in patterns
        for p in glob.glob(osp.join(ROOT, pat)))


SMALL = _paths(SMALL_IMAGE_GLOBS)
STUDY_DOWNSTREAM = _paths([STUDY_DOWNSTREAM_GLOB])
LARGE = [p for p in _paths(LARGE_IMAGE_GLOBS) if p not in STUDY_DOWNSTREAM]


def _backbone_cfg(cfg: Config) -> dict:
    model = cfg.model
    if model.get('type') == 'FeatARC':
        model = model.algorithm
    return model.backbone.to_dict()


def _build(cfg_dict: dict) -> torch.nn.Module:
    import decssl_mm  # noqa: F401  (registers the project's modules)
    from decssl_mm.registry import MODELS
    cfg_dict = dict(cfg_dict)
    cfg_dict.pop('init_cfg', None)  # no checkpoint files
    with DefaultScope.overwrite_default_scope('decssl_mm'):
        return MODELS.build(cfg_dict)


def test_the_lists_are_not_empty():
    assert 'configs/decssl/simclr_r18_fmnist_dir0.1.py' in SMALL
    assert 'configs/study/simclr_r18w16_fmnist_dec.py' in SMALL
    assert 'configs/benchmarks/linear/resnet18_linear-100e_cifar10.py' \
        in SMALL
    assert len(SMALL) >= 40 and len(LARGE) >= 10
    assert len(STUDY_DOWNSTREAM) == 4


def test_small_image_configs_keep_4x4_at_stage_4():
    built = {}
    for path in SMALL:
        backbone = _backbone_cfg(Config.fromfile(osp.join(ROOT, path)))
        assert backbone['type'] == 'ResNet_CIFAR', path
        key = repr(sorted(backbone.items()))
        if key not in built:
            model = _build(backbone)
            model.eval()  # mmpretrain's ResNet.train() returns None
            with torch.no_grad():
                built[key] = tuple(model(torch.zeros(2, 3, 32, 32))[-1].shape)
        shape = built[key]
        assert shape[-2] >= 4 and shape[-1] >= 4, (path, shape)


@pytest.mark.parametrize('path', STUDY_DOWNSTREAM)
def test_study_downstream_configs_use_the_study_backbone(path):
    backbone = _backbone_cfg(Config.fromfile(osp.join(ROOT, path)))
    assert backbone['type'].split('.')[-1] == 'ResNet_CIFAR', path
    assert backbone['depth'] == 18, path


@pytest.mark.parametrize('path', LARGE)
def test_large_image_configs_keep_the_imagenet_stem(path):
    backbone = _backbone_cfg(Config.fromfile(osp.join(ROOT, path)))
    assert backbone['type'] != 'ResNet_CIFAR', path
    assert backbone['type'].split('.')[-1] in ('ResNet', 'ResNetV1c'), path


def test_demo_twin_simclr_builds_with_a_4x4_map():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/decssl/simclr_r18_fmnist_dir0.1.py'))
    model_cfg = cfg.model.to_dict()
    model_cfg['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    model = _build(model_cfg)
    model.eval()
    assert type(model.backbone).__name__ == 'ResNet_CIFAR'
    # 3x3 stride-1 stem and no max-pool: 32 -> 32 -> 16 -> 8 -> 4
    assert model.backbone.conv1.kernel_size == (3, 3)
    assert model.backbone.conv1.stride == (1, 1)
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(2, 3, 32, 32))
    assert tuple(feats[-1].shape) == (2, 512, 4, 4)
