"""The OpenMMLab stack itself, through its real code paths on tiny inputs."""
import os
import os.path as osp
import socket
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import decssl_mm  # noqa: F401
from _helpers.configs import ROOT


def _name() -> str:
    return f'stack_{uuid.uuid4().hex[:10]}'


def packaged_config(package: str, path: str) -> Config:
    """Load a config shipped inside an installed OpenMMLab package."""
    import importlib
    mod = importlib.import_module(package)
    return Config.fromfile(
        osp.join(osp.dirname(mod.__file__), '.mim', 'configs', path))


def test_mmcv_compiled_ops():
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    feats = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8)
    rois = torch.tensor([[0., 0., 0., 3., 3.]])
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(feats, rois)
    assert out.shape == (1, 1, 2, 2)
    assert torch.all(out[0, 0, 1] > out[0, 0, 0])  # rows increase


def _mocov2_cfg(data_root: str, work_dir: str, iters: int) -> Config:
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            experiment_name=_name(),
            work_dir=work_dir,
            model=dict(
                type='MoCo', queue_len=32, feat_dim=16, momentum=0.01,
                data_preprocessor=dict(
                    type='SelfSupDataPreprocessor', mean=[127.5] * 3,
                    std=[64.] * 3, to_rgb=False),
                backbone=dict(type='ResNet', depth=18, base_channels=8,
                              stem_channels=8),
                neck=dict(type='MoCoV2Neck', in_channels=64, hid_channels=32,
                          out_channels=16, with_avg_pool=True),
                head=dict(type='ContrastiveHead',
                          loss=dict(type='CrossEntropyLoss'),
                          temperature=0.2)),
            train_dataloader=dict(
                batch_size=4, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                collate_fn=dict(type='default_collate'),
                dataset=dict(
                    type='FashionMNISTGz', data_root=data_root,
                    _scope_='decssl_mm',
                    pipeline=[
                        dict(type='decssl_mm.GrayToRGB'),
                        dict(type='MultiView', num_views=2, transforms=[[
                            dict(type='RandomResizedCrop', scale=32),
                            dict(type='ColorJitter', brightness=0.4,
                                 contrast=0.4, saturation=0.4, hue=0.4),
                        ]]),
                        dict(type='PackInputs')])),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.03,
                                              momentum=0.9)),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters),
            default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                               interval=2, by_epoch=False)),
            log_level='WARNING'))
    return cfg


def test_mocov2_trains_and_resumes(fmnist_root, tmp_path):
    runner = Runner.from_cfg(_mocov2_cfg(fmnist_root, str(tmp_path), 2))
    runner.train()
    ckpt = osp.join(str(tmp_path), 'iter_2.pth')
    assert osp.isfile(ckpt)
    cfg = _mocov2_cfg(fmnist_root, str(tmp_path), 4)
    cfg.resume = True
    cfg.load_from = ckpt
    resumed = Runner.from_cfg(cfg)
    resumed.train()  # loads with torch.load(weights_only=True)
    assert resumed.iter == 4
    assert int(resumed.model.queue_ptr) == (4 * 4) % 32


def _tiny_coco(tmp_path):
    from decssl_mm.datasets.tiny_coco import make_tiny_coco
    return make_tiny_coco(str(tmp_path / 'coco'), num_images=4, size=64,
                          num_val=2)


def test_faster_rcnn_packaged_config_trains_and_evaluates(tmp_path):
    info = _tiny_coco(tmp_path)
    cfg = packaged_config('mmdet', 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.experiment_name = _name()
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.init_cfg = None  # never download weights
    cfg.model.roi_head.bbox_head.num_classes = len(info['classes'])
    metainfo = dict(classes=tuple(info['classes']))
    for name, ann in (('train_dataloader', info['train_json']),
                      ('val_dataloader', info['val_json'])):
        loader = cfg[name]
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.batch_size = 1
        ds = loader.dataset
        ds.data_root = ''
        ds.ann_file = ann
        ds.data_prefix = dict(img=info['img_dir'] + '/')
        ds.metainfo = metainfo
        for t in ds.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (96, 96)
    cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True,
                                                   min_size=1)
    cfg.val_evaluator.ann_file = info['val_json']
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.param_scheduler = []
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert 'coco/bbox_mAP' in metrics
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def _tiny_seg(root: str, n: int = 4, size: int = 64) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for sub in ('img', 'ann'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4:, :size // 2] = 1 + i % 2
        img = (rng.random((size, size, 3)) * 60).astype(np.uint8)
        img[mask > 0] += 120
        Image.fromarray(img).save(osp.join(root, 'img', f'{i}.png'))
        Image.fromarray(mask).save(osp.join(root, 'ann', f'{i}.png'))


def test_mmseg_fcn_trains_one_iteration(tmp_path):
    root = str(tmp_path / 'seg')
    _tiny_seg(root)
    cfg = packaged_config('mmseg',
                          'fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py')
    cfg.experiment_name = _name()
    cfg.work_dir = str(tmp_path / 'work')
    cfg.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.pretrained = None  # never download weights
    for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
        head.num_classes = 3
        head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.data_preprocessor.size = (64, 64)
    pipe_train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    ds = dict(type='BaseSegDataset', data_root=root,
              data_prefix=dict(img_path='img', seg_map_path='ann'),
              img_suffix='.png', seg_map_suffix='.png',
              metainfo=dict(classes=('bg', 'a', 'b'),
                            palette=[[0, 0, 0], [1, 1, 1], [2, 2, 2]]),
              pipeline=pipe_train)
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0,
        sampler=dict(type='InfiniteSampler', shuffle=True), dataset=ds)
    cfg.val_dataloader = dict(
        batch_size=1, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False), dataset=ds)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger.interval = 1
    cfg.param_scheduler = []
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert 'mIoU' in metrics and 0.0 <= metrics['mIoU'] <= 100.0


def test_dist_train_two_processes_on_cpu(fmnist_root, tmp_path):
    cfg = _mocov2_cfg(fmnist_root, str(tmp_path / 'work'), 2)
    cfg.env_cfg = dict(dist_cfg=dict(backend='nccl'))  # gloo chosen on CPU
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), PYTHON=sys.executable,
               OMP_NUM_THREADS='1')
    out = subprocess.run(
        ['bash', osp.join(ROOT, 'tools/dist_train.sh'), path, '2'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = torch.load(str(tmp_path / 'work' / 'iter_2.pth'),
                      weights_only=True)
    assert ckpt['meta']['iter'] == 2
