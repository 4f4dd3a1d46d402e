"""load_eval_model: every checkpoint kind; the stem check."""
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

import decssl_mm  # noqa: F401
from decssl_mm.evaluation import (check_backbone_compat, eval_model_cfg,
                                  load_eval_model)
from decssl_mm.evaluation.export import (backbone_file_content,
                                         extract_backbone_state)
from decssl_mm.registry import MODELS
from decssl_mm.utils.io import atomic_torch_save
from ._tiny import DEC_SL, SIMCLR, tiny_study_cfg


@pytest.fixture
def simclr(fmnist_root, tmp_path):
    init_default_scope('decssl_mm')
    cfg = tiny_study_cfg(SIMCLR, fmnist_root, str(tmp_path))
    torch.manual_seed(1)
    model = MODELS.build(eval_model_cfg(cfg))
    model.init_weights()
    return cfg, model


def _equal_backbones(a, b):
    sa, sb = a.backbone.state_dict(), b.backbone.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k])
                                          for k in sa)


def test_federated_checkpoint_and_extracted_files(simclr, tmp_path):
    cfg, trained = simclr
    ckpt = str(tmp_path / 'epoch_3.pth')
    atomic_torch_save(dict(state_dict=trained.state_dict(),
                           meta=dict(epoch=3)), ckpt)
    model, info = load_eval_model(cfg, ckpt)
    assert _equal_backbones(model, trained)
    assert info['loaded'] == 'backbone' and info['round'] == 3
    assert info['cluster'] == -1 and info['checkpoint'] == ckpt
    state, binfo = extract_backbone_state(ckpt)
    for layout in ('prefixed', 'bare'):
        path = str(tmp_path / f'{layout}.pth')
        atomic_torch_save(backbone_file_content(state, binfo, layout), path)
        model, info = load_eval_model(cfg, path)
        assert _equal_backbones(model, trained), layout
        assert info['loaded'] == 'backbone'


def test_clustered_checkpoint_picks_the_cluster(simclr, tmp_path):
    cfg, trained = simclr
    state = trained.state_dict()
    clusters = [{k: v + c if v.is_floating_point() else v
                 for k, v in state.items()} for c in range(2)]
    ckpt = str(tmp_path / 'featarc.pth')
    atomic_torch_save(dict(state_dict=clusters[1], meta=dict(epoch=2),
                           federated=dict(round=2, extra=dict(
                               clusters=clusters, chosen=1))), ckpt)
    key = 'conv1.weight'
    ref = trained.backbone.state_dict()[key]
    model, info = load_eval_model(cfg, ckpt)  # the chosen cluster
    assert info['cluster'] == 1 and info['num_clusters'] == 2
    assert torch.equal(model.backbone.state_dict()[key], ref + 1)
    model, info = load_eval_model(cfg, ckpt, cluster=0)
    assert info['cluster'] == 0
    assert torch.equal(model.backbone.state_dict()[key], ref)
    with pytest.raises(ValueError, match='featarc.pth.*out of range'):
        load_eval_model(cfg, ckpt, cluster=2)
    # a FeatARC config is evaluated as its inner algorithm
    featarc = cfg.copy()
    featarc.model = dict(type='FeatARC', algorithm=cfg.model)
    assert eval_model_cfg(featarc)['type'] == 'SimCLR'
    model, _ = load_eval_model(featarc, ckpt, cluster=0)
    assert type(model).__name__ == 'SimCLR'


def test_classifier_is_loaded_whole(fmnist_root, tmp_path):
    init_default_scope('decssl_mm')
    cfg = tiny_study_cfg(DEC_SL, fmnist_root, str(tmp_path))
    trained = MODELS.build(eval_model_cfg(cfg))
    trained.init_weights()
    ckpt = str(tmp_path / 'sl.pth')
    atomic_torch_save(dict(state_dict=trained.state_dict()), ckpt)
    model, info = load_eval_model(cfg, ckpt)
    assert info['loaded'] == 'model'
    assert torch.equal(model.head.fc.weight, trained.head.fc.weight)
    # its extracted backbone loads the backbone only
    state, binfo = extract_backbone_state(ckpt)
    path = str(tmp_path / 'sl_backbone.pth')
    atomic_torch_save(backbone_file_content(state, binfo), path)
    model, info = load_eval_model(cfg, path)
    assert info['loaded'] == 'backbone' and _equal_backbones(model, trained)


def _save_backbone(backbone, path):
    atomic_torch_save({'state_dict': {f'backbone.{k}': v for k, v in
                                      backbone.state_dict().items()}}, path)
    return extract_backbone_state(path)[0]


def test_cifar_and_imagenet_stems_do_not_mix(tmp_path):
    from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
    cifar_path = str(tmp_path / 'cifar_r18.pth')
    cifar = _save_backbone(ResNet_CIFAR(depth=18, base_channels=8,
                                        stem_channels=8), cifar_path)
    assert tuple(cifar['conv1.weight'].shape) == (8, 3, 3, 3)
    cifar_cfg = dict(type='ResNet_CIFAR', depth=18, base_channels=8,
                     stem_channels=8)
    imagenet_cfg = dict(cifar_cfg, type='ResNet')
    check_backbone_compat(cifar, cifar_cfg, cifar_path)
    with pytest.raises(ValueError) as err:
        check_backbone_compat(cifar, imagenet_cfg, cifar_path)
    msg = str(err.value)
    assert msg.startswith(cifar_path)
    assert 'a CIFAR stem (conv1 3x3' in msg and 'an ImageNet stem' in msg
    assert msg.index('CIFAR stem') < msg.index('ImageNet stem')

    imagenet_path = str(tmp_path / 'imagenet_r18.pth')
    imagenet = _save_backbone(ResNet(depth=18, base_channels=8,
                                     stem_channels=8), imagenet_path)
    check_backbone_compat(imagenet, imagenet_cfg, imagenet_path)
    with pytest.raises(ValueError) as err:
        check_backbone_compat(imagenet, dict(model=dict(
            backbone=cifar_cfg)), imagenet_path)
    msg = str(err.value)
    assert osp.basename(imagenet_path) in msg
    assert msg.index('ImageNet stem') < msg.index('CIFAR stem')


def test_stem_error_through_load_eval_model(simclr, tmp_path):
    from mmpretrain.models.backbones import ResNet
    cfg, _ = simclr  # a 32 px config: CIFAR stem
    path = str(tmp_path / 'imagenet_w8.pth')
    _save_backbone(ResNet(depth=18, base_channels=8, stem_channels=8), path)
    with pytest.raises(ValueError, match='imagenet_w8.pth.*ImageNet stem.*'
                       'CIFAR stem'):
        load_eval_model(cfg, path)
