"""End to end on CPU: self-supervised checkpoint -> extracted backbone ->
mmdet / mmseg fine-tuning and evaluation, kNN evaluation, linear probe.

Everything is tiny (32-128 px images, a few samples, one iteration) and
lives under pytest's tmp_path; nothing is downloaded.
"""
import glob
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
import torch

import decssl_mm  # noqa: F401  (compat fixes + registration)
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

from decssl_mm.datasets import CocoSSLDataset, WarehouseDataset
from decssl_mm.datasets.tiny_coco import make_tiny_coco
from decssl_mm.evaluation.export import (check_backbone_compat,
                                         extract_backbone_state)
from decssl_mm.evaluation.knn import knn_accuracy, knn_predict
from decssl_mm.utils.io import atomic_torch_save

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOWNSTREAM = osp.join(REPO, 'configs', 'downstream')
BENCHMARKS = osp.join(REPO, 'configs', 'benchmarks')
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _tool(rel_path: str):
    """Import a script of tools/ as a module."""
    name = 'tool_' + osp.splitext(osp.basename(rel_path))[0]
    spec = importlib.util.spec_from_file_location(name,
                                                  osp.join(REPO, rel_path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _plain_state(path: str) -> dict:
    """Bare backbone keys of an extracted (prefixed) file, loaded safely."""
    obj = torch.load(path, map_location='cpu', weights_only=True)
    return {k[len('backbone.'):]: v for k, v in obj['state_dict'].items()}


class _Probe(Hook):
    """Check the backbone weights at the start of training; keep metrics."""

    def __init__(self, expected: dict):
        self.expected = expected
        self.metrics = None
        self.checked = False

    def before_train(self, runner) -> None:
        backbone = runner.model.backbone.state_dict()
        assert set(self.expected) <= set(backbone)
        for key, value in self.expected.items():
            assert torch.equal(backbone[key], value), key
        self.checked = True

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = metrics


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def class_folders(tmp_path_factory) -> str:
    """Two classes (dark / bright images) in train/ and val/ folders."""
    root = str(tmp_path_factory.mktemp('folders'))
    rng = np.random.default_rng(0)
    for split, n in (('train', 6), ('val', 3)):
        for c, base in enumerate((30, 200)):
            d = osp.join(root, split, f'class{c}')
            os.makedirs(d)
            for i in range(n):
                img = rng.integers(0, 40, (32, 32, 3)) + base
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(
                    osp.join(d, f'{i}.png'))
    return root


def _knn_loader(root: str, split: str) -> dict:
    return dict(
        batch_size=4,
        num_workers=0,
        dataset=dict(
            type='CustomDataset',
            data_root=root,
            data_prefix=split,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(32, 32)),
                dict(type='PackInputs')
            ]))


def _moco_model(depth: int = 50) -> dict:
    width = 2048 if depth >= 50 else 512
    return dict(
        type='MoCo',
        queue_len=8,
        feat_dim=16,
        momentum=0.01,
        data_preprocessor=dict(
            type='SelfSupDataPreprocessor', mean=MEAN, std=STD, to_rgb=True),
        backbone=dict(
            type='ResNet',
            depth=depth,
            norm_cfg=dict(type='BN'),
            zero_init_residual=False),
        neck=dict(
            type='MoCoV2Neck',
            in_channels=width,
            hid_channels=32,
            out_channels=16,
            with_avg_pool=True),
        head=dict(
            type='ContrastiveHead',
            loss=dict(type='CrossEntropyLoss'),
            temperature=0.2))


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory) -> dict:
    """COCO-named categories (all 80, objects of the first 3)."""
    from mmdet.datasets import CocoDataset
    return make_tiny_coco(
        str(tmp_path_factory.mktemp('coco')),
        num_images=3,
        num_val=2,
        categories=CocoDataset.METAINFO['classes'],
        num_used_categories=3,
        num_empty=1)


@pytest.fixture(scope='module')
def tiny_warehouse(tmp_path_factory) -> dict:
    return make_tiny_coco(
        str(tmp_path_factory.mktemp('warehouse')),
        num_images=2,
        num_val=2,
        num_sources=2,
        seed=1)


@pytest.fixture(scope='module')
def ssl_run(tmp_path_factory, tiny_coco, class_folders) -> dict:
    """One federated round of MoCo (ResNet-50) over 2 clients holding
    COCO-style images at 64 px, with the kNN hook; returns the checkpoint
    and the runner."""
    work_dir = str(tmp_path_factory.mktemp('ssl'))
    view = [
        dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.)),
        dict(type='RandomFlip', prob=0.5)
    ]
    cfg = dict(
        default_scope='decssl_mm',
        experiment_name='e2e_ssl',
        work_dir=work_dir,
        model=_moco_model(50),
        model_wrapper_cfg=dict(type='decssl_mm.FederatedModelWrapper'),
        train_dataloader=dict(
            batch_size=2,
            num_workers=0,
            drop_last=True,
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='ClientPartitionedDataset',
                split_key='dominant_category',
                partition=dict(type='IID', num_clients=2, seed=0),
                dataset=dict(
                    type='CocoSSLDataset',
                    data_root=tiny_coco['root'],
                    ann_file='annotations/train.json',
                    data_prefix=dict(img='images/'),
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='MultiView', num_views=2,
                             transforms=[view]),
                        dict(type='PackInputs')
                    ]))),
        train_cfg=dict(type='FederatedTrainLoop', rounds=1, local_iters=1),
        # Batch 2: clip gradients, BN statistics of 2 samples are noisy.
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
            clip_grad=dict(max_norm=1.0)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[
            dict(
                type='KNNEvalHook',
                train_dataloader=_knn_loader(class_folders, 'train'),
                val_dataloader=_knn_loader(class_folders, 'val'),
                k=5)
        ],
        log_level='WARNING',
        randomness=dict(seed=0))
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    return dict(ckpt=ckpt, runner=runner, work_dir=work_dir)


@pytest.fixture(scope='module')
def backbone_file(ssl_run, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp('export') / 'backbone.pth')
    tool = _tool('tools/model_converters/extract_backbone.py')
    assert tool.main([ssl_run['ckpt'], out, '--check-depth', '50']) == 0
    return out


# --------------------------------------------------------------------- kNN
def test_knn_exact_hand_case():
    bank = torch.tensor([[1., 0.], [0.8, 0.6], [0., 1.], [-1., 0.]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[1., 0.1]])
    # k=1: the nearest neighbour (class 0) decides.
    assert knn_predict(bank, labels, query, k=1).argmax(1).item() == 0
    # k=3, T=0.1: weights exp(cos/T); two class-1 neighbours beat one
    # class-0 neighbour here; the far class-2 sample is not among the k.
    q = torch.nn.functional.normalize(query, dim=1)
    b = torch.nn.functional.normalize(bank, dim=1)
    w = (q @ b.T / 0.1).exp()[0]
    scores = knn_predict(bank, labels, query, k=3, temperature=0.1)
    assert torch.allclose(scores[0],
                          torch.stack([w[0], w[1] + w[2], torch.tensor(0.)]))
    assert scores.argmax(1).item() == 0  # exp(9.95) > exp(8.6)+exp(1.0)
    acc = knn_accuracy(bank, labels, query, torch.tensor([0]), k=3,
                       topk=(1, 2))
    assert acc == {'top1': 100.0, 'top2': 100.0}
    acc = knn_accuracy(bank, labels, query, torch.tensor([1]), k=3,
                       topk=(1, 2))
    assert acc == {'top1': 0.0, 'top2': 100.0}


def test_knn_separable_toy_and_batching():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=g) * 3
    labels = torch.arange(4).repeat_interleave(50)
    feats = centers[labels] + torch.randn(200, 16, generator=g) * 0.5
    tlabels = torch.arange(4).repeat_interleave(10)
    tfeats = centers[tlabels] + torch.randn(40, 16, generator=g) * 0.5
    acc = knn_accuracy(feats, labels, tfeats, tlabels, k=20)
    assert acc['top1'] > 90 > 25  # chance is 25 %
    assert acc['top5'] == 100.0
    full = knn_predict(feats, labels, tfeats, k=20)
    chunked = knn_predict(feats, labels, tfeats, k=20, query_batch=7,
                          bank_batch=13)
    assert torch.allclose(full, chunked)
    with pytest.raises(ValueError, match='bank is empty'):
        knn_predict(feats[:0], labels[:0], tfeats)


def test_knn_hook_through_runner(ssl_run):
    hub = ssl_run['runner'].message_hub
    top1 = hub.get_scalar('knn/top1').current()
    assert 0.0 <= top1 <= 100.0  # also False for NaN (diverged features)
    assert hub.get_scalar('knn/top5').current() == 100.0  # 2 classes


def test_knn_eval_tool(ssl_run, class_folders, tmp_path, capsys):
    cfg = Config(
        dict(
            default_scope='decssl_mm',
            model=_moco_model(50),
            knn_train_dataloader=_knn_loader(class_folders, 'train'),
            knn_val_dataloader=_knn_loader(class_folders, 'val')))
    cfg_path = str(tmp_path / 'knn_cfg.py')
    cfg.dump(cfg_path)
    tool = _tool('tools/analysis/knn_eval.py')
    metrics = tool.main([cfg_path, ssl_run['ckpt'], '--k', '5'])
    assert set(metrics) == {'top1', 'top5'}
    # Same weights and data as the hook at the end of training.
    hub = ssl_run['runner'].message_hub
    assert metrics['top1'] == pytest.approx(
        hub.get_scalar('knn/top1').current())
    assert 'top1' in capsys.readouterr().out


# ------------------------------------------------------------------ export
def test_extract_backbone_layouts(ssl_run, backbone_file, tmp_path):
    ckpt = torch.load(ssl_run['ckpt'], map_location='cpu', weights_only=True)
    model_state = ckpt['state_dict']
    prefixed = torch.load(backbone_file, weights_only=True)
    assert set(prefixed) == {'state_dict', 'meta'}
    expected = {k: v for k, v in model_state.items()
                if k.startswith('backbone.')}
    assert set(prefixed['state_dict']) == set(expected)
    for k, v in expected.items():
        assert torch.equal(prefixed['state_dict'][k], v)
    meta = prefixed['meta']
    assert meta['round'] == 1 and meta['layout'] == 'prefixed'
    assert meta['depth'] == 50 and meta['cluster'] == -1
    assert all(isinstance(v, (int, str)) for v in meta.values())

    bare_path = str(tmp_path / 'bare.pth')
    tool = _tool('tools/model_converters/extract_backbone.py')
    assert tool.main([ssl_run['ckpt'], bare_path, '--layout', 'bare']) == 0
    bare = torch.load(bare_path, weights_only=True)
    assert set(bare) == {k[len('backbone.'):] for k in expected}
    # The bare file fits mmpretrain's ResNet-50 exactly.
    from mmpretrain.models.backbones import ResNet
    ResNet(depth=50).load_state_dict(bare, strict=True)
    # Re-extracting an extracted file gives the same tensors.
    state, info = extract_backbone_state(bare_path)
    assert info['num_keys'] == len(bare) and info['depth'] == 50


def test_extract_featarc_cluster(ssl_run, tmp_path):
    full = torch.load(ssl_run['ckpt'], map_location='cpu', weights_only=True)
    # A small FeatARC-style checkpoint: stem weights only, 3 cluster models.
    small = {k: v for k, v in full['state_dict'].items()
             if k.startswith(('backbone.conv1.', 'backbone.bn1.', 'neck.'))}
    clusters = [{k: v + c if v.is_floating_point() else v
                 for k, v in small.items()} for c in range(3)]
    ckpt = dict(meta=dict(epoch=4), state_dict=small,
                federated=dict(round=4,
                               extra=dict(clusters=clusters, chosen=2)))
    path = str(tmp_path / 'featarc.pth')
    atomic_torch_save(ckpt, path)
    key = 'conv1.weight'
    ref = ckpt['state_dict']['backbone.' + key]
    state, info = extract_backbone_state(path)  # default: chosen
    assert info['cluster'] == 2 and info['num_clusters'] == 3
    assert info['round'] == 4
    assert torch.equal(state[key], ref + 2)
    state, info = extract_backbone_state(path, cluster=1)
    assert torch.equal(state[key], ref + 1)
    with pytest.raises(ValueError, match='out of range.*3 cluster'):
        extract_backbone_state(path, cluster=3)
    with pytest.raises(ValueError, match='no cluster models'):
        extract_backbone_state(ssl_run['ckpt'], cluster=0)


def test_extract_bad_inputs(tmp_path, capsys):
    # A missing file.
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        extract_backbone_state(missing)
    tool = _tool('tools/model_converters/extract_backbone.py')
    assert tool.main([missing, str(tmp_path / 'out.pth')]) == 1
    assert 'nope.pth' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'out.pth')
    # A checkpoint without backbone keys.
    headless = str(tmp_path / 'headless.pth')
    atomic_torch_save(
        dict(meta=dict(epoch=3),
             state_dict={'head.fc.weight': torch.zeros(2, 2)}), headless)
    with pytest.raises(ValueError, match=r'headless\.pth.*no backbone'):
        extract_backbone_state(headless)
    # A pickled callable is refused, naming the file.
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'fn': os.getcwd}, evil)
    with pytest.raises(ValueError, match='evil.pth'):
        extract_backbone_state(evil)


def test_depth_mismatch_is_named(tmp_path):
    from mmpretrain.models.backbones import ResNet
    r18 = str(tmp_path / 'r18.pth')
    atomic_torch_save({'state_dict': {f'backbone.{k}': v for k, v in
                                      ResNet(depth=18).state_dict().items()}},
                      r18)
    state, info = extract_backbone_state(r18)
    assert info['depth'] == 18
    check_backbone_compat(state, 18, r18)
    cfg = Config.fromfile(
        osp.join(DOWNSTREAM, 'mmdet',
                 'faster-rcnn_r50-decssl-pre_fpn_1x_coco.py'))
    with pytest.raises(ValueError) as err:
        check_backbone_compat(state, cfg.model, r18)
    msg = str(err.value)
    assert 'r18.pth' in msg and 'ResNet-50' in msg
    assert "'layer1.0.conv1.weight'" in msg and 'ResNet-18' in msg
    # A deep-stem (ResNetV1c) config does not fit a plain-stem file.
    with pytest.raises(ValueError, match="stem"):
        check_backbone_compat(state, dict(type='ResNetV1c', depth=18), r18)
    # The converter refuses it too.
    tool = _tool('tools/model_converters/extract_backbone.py')
    assert tool.main([r18, str(tmp_path / 'o.pth'), '--check-depth',
                      '50']) == 1


# ------------------------------------------------------------ configs
def _all_configs():
    found = glob.glob(osp.join(DOWNSTREAM, '**', '*.py'), recursive=True) + \
        glob.glob(osp.join(BENCHMARKS, 'linear', '*.py'))
    # shared `_base_` files hold parts of configs, not whole ones
    return sorted(p for p in found if '/_base_/' not in p)


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


@pytest.mark.parametrize('path', _all_configs(),
                         ids=lambda p: osp.relpath(p, REPO))
def test_configs_never_download(path):
    cfg = Config.fromfile(path)
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    assert cfg.model.get('pretrained') is None
    urls = [s for s in _strings(cfg.model.to_dict()) if '://' in s]
    assert not urls, urls


# ------------------------------------------------------------ datasets
def test_coco_ssl_dataset_keys(tiny_coco):
    from decssl_mm.registry import DATASETS
    with DefaultScope.overwrite_default_scope('decssl_mm'):
        ds = DATASETS.build(
            dict(type='CocoSSLDataset', data_root=tiny_coco['root'],
                 ann_file='annotations/train.json',
                 data_prefix=dict(img_path='images/')))
    assert len(ds) == 3 and len(ds.metainfo['classes']) == 80
    empty, full = ds.get_data_info(0), ds.get_data_info(1)
    assert empty['dominant_category'] == -1 and empty['num_instances'] == 0
    assert full['num_instances'] >= 1 and full['dominant_category'] in range(3)
    assert full['dominant_category'] in full['category_set']
    assert osp.isfile(full['img_path']) and full['source_id'] == 'robot_1'
    with pytest.raises(FileNotFoundError, match='missing.json'):
        CocoSSLDataset(ann_file='missing.json', data_root=tiny_coco['root'])


def test_warehouse_dataset(tiny_warehouse, tmp_path):
    import json

    from mmdet.registry import DATASETS
    kw = dict(type='WarehouseDataset', data_root=tiny_warehouse['root'],
              data_prefix=dict(img='images/'), pipeline=[])
    # Found from mmdet configs (default_scope='mmdet').
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(dict(kw, ann_file='annotations/val.json'))
    assert ds.metainfo['classes'] == ('box', 'pallet', 'person')
    assert [ds.get_data_info(i)['source_id'] for i in range(len(ds))] == [
        'robot_0', 'robot_1'
    ]
    inst = ds.get_data_info(0)['instances'][0]
    assert len(inst['mask'][0]) >= 6 and inst['bbox_label'] in range(3)
    # An image without source_id is an error naming the file.
    data = json.load(open(tiny_warehouse['val_json']))
    del data['images'][0]['source_id']
    bad = str(tmp_path / 'nosource.json')
    json.dump(data, open(bad, 'w'))
    kw.pop('type')
    with pytest.raises(ValueError, match='nosource.json.*source_id'):
        WarehouseDataset(**kw, ann_file=bad)
    ds = WarehouseDataset(**kw, ann_file=bad, missing_source='unknown')
    assert ds.get_data_info(0)['source_id'] == 'unknown'


# ------------------------------------------------------ mmdet / mmseg
def _tiny_det_cfg(config: str, data: dict, backbone: str, work_dir: str,
                  name: str, scale: int = 128) -> Config:
    cfg = Config.fromfile(osp.join(DOWNSTREAM, 'mmdet', config))
    cfg.model.backbone.init_cfg.checkpoint = backbone
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.visualizer.name = name
    cfg.log_level = 'WARNING'
    for split in ('train', 'val'):
        loader = cfg[f'{split}_dataloader']
        loader.batch_size = 2 if split == 'train' else 1
        loader.num_workers = 0
        loader.persistent_workers = False
        ds = loader.dataset
        ds.data_root = data['root']
        ds.ann_file = f'annotations/{split}.json'
        ds.data_prefix = dict(img='images/')
        for t in ds.pipeline:
            if t.type == 'Resize':
                t.scale = (scale, scale)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = data['val_json']
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=1)
    cfg.default_hooks.checkpoint = None
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # keep detections of 1 iter
    return cfg


def test_faster_rcnn_coco_e2e(backbone_file, tiny_coco, tmp_path):
    cfg = _tiny_det_cfg('faster-rcnn_r50-decssl-pre_fpn_1x_coco.py',
                        tiny_coco, backbone_file, str(tmp_path), 'e2e_frcnn')
    runner = Runner.from_cfg(cfg)
    probe = _Probe(_plain_state(backbone_file))
    runner.register_hook(probe)
    runner.train()
    assert probe.checked
    assert 0.0 <= probe.metrics['coco/bbox_mAP'] <= 1.0


def test_mask_rcnn_warehouse_e2e(backbone_file, tiny_warehouse, tmp_path):
    cfg = _tiny_det_cfg('mask-rcnn_r50-decssl-pre_fpn_1x_warehouse.py',
                        tiny_warehouse, backbone_file, str(tmp_path),
                        'e2e_mrcnn')
    assert cfg.num_classes == len(tiny_warehouse['classes'])
    runner = Runner.from_cfg(cfg)
    probe = _Probe(_plain_state(backbone_file))
    runner.register_hook(probe)
    runner.train()
    assert probe.checked
    assert 0.0 <= probe.metrics['coco/bbox_mAP'] <= 1.0
    assert 0.0 <= probe.metrics['coco/segm_mAP'] <= 1.0


def test_mask_rcnn_warehouse_num_classes_checked(backbone_file,
                                                 tiny_warehouse, tmp_path):
    cfg = _tiny_det_cfg('mask-rcnn_r50-decssl-pre_fpn_1x_warehouse.py',
                        tiny_warehouse, backbone_file, str(tmp_path),
                        'e2e_mrcnn_bad')
    cfg.model.roi_head.bbox_head.num_classes = 5
    runner = Runner.from_cfg(cfg)
    with pytest.raises(AssertionError, match='num_classes'):
        runner.train()


def _make_tiny_voc(root: str, n_train: int = 2, n_val: int = 2,
                   size: int = 64) -> None:
    rng = np.random.default_rng(0)
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    names = {'train': [], 'val': []}
    for i in range(n_train + n_val):
        name = f'2007_{i:06d}'
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        seg = np.zeros((size, size), np.uint8)
        c = int(rng.integers(1, 21))
        y, x = rng.integers(4, size // 2, 2)
        img[y:y + size // 3, x:x + size // 3] = (40 * c) % 256
        seg[y:y + size // 3, x:x + size // 3] = c
        seg[0, :] = 255  # an ignored border row, as in VOC
        Image.fromarray(img).save(osp.join(root, 'JPEGImages', name + '.jpg'))
        Image.fromarray(seg).save(
            osp.join(root, 'SegmentationClass', name + '.png'))
        names['train' if i < n_train else 'val'].append(name)
    for split, ids in names.items():
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'),
                  'w') as f:
            f.write('\n'.join(ids) + '\n')


def test_fcn_voc_e2e(backbone_file, tmp_path):
    root = str(tmp_path / 'voc')
    _make_tiny_voc(root)
    cfg = Config.fromfile(
        osp.join(DOWNSTREAM, 'mmseg',
                 'fcn_r50-d8-decssl-pre_4xb4-20k_voc12aug-512x512.py'))
    cfg.model.backbone.init_cfg.checkpoint = backbone_file
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = cfg.visualizer.name = 'e2e_fcn'
    cfg.log_level = 'WARNING'
    crop = (64, 64)
    cfg.model.data_preprocessor.size = crop
    train_pipeline = cfg.train_pipeline
    for t in train_pipeline:
        if t.type == 'RandomResize':
            t.scale = (128, 64)
        elif t.type == 'RandomCrop':
            t.crop_size = crop
        elif t.type == 'Pad':
            t.size = crop
    test_pipeline = cfg.test_pipeline
    for t in test_pipeline:
        if t.type == 'Resize':
            t.scale = (128, 64)

    def voc(split, pipeline):
        return ConfigDict(
            type='PascalVOCDataset',
            data_root=root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file=f'ImageSets/Segmentation/{split}.txt',
            pipeline=pipeline)

    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset = voc('train', train_pipeline)  # replace
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader.dataset = voc('val', test_pipeline)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=1)
    cfg.default_hooks.checkpoint = None
    runner = Runner.from_cfg(cfg)
    probe = _Probe(_plain_state(backbone_file))
    runner.register_hook(probe)
    runner.train()
    assert probe.checked
    assert 0.0 <= probe.metrics['mIoU'] <= 100.0


# ------------------------------------------------------------ linear probe
def test_linear_probe_e2e(backbone_file, class_folders, tmp_path):
    cfg = Config.fromfile(
        osp.join(BENCHMARKS, 'linear', 'resnet50_linear-100e_cifar10.py'))
    cfg.model.backbone.init_cfg.checkpoint = backbone_file
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = 'e2e_linear'
    cfg.log_level = 'WARNING'
    cfg.model.head.num_classes = 2
    cfg.model.head.topk = (1, )
    cfg.data_preprocessor.update(num_classes=2, mean=MEAN, std=STD,
                                 to_rgb=True)
    for split in ('train', 'val'):
        loader = _knn_loader(class_folders, split)
        loader.update(sampler=dict(type='DefaultSampler',
                                   shuffle=split == 'train'))
        cfg[f'{split}_dataloader'] = loader
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=1)
    cfg.default_hooks.checkpoint = None
    runner = Runner.from_cfg(cfg)
    expected = _plain_state(backbone_file)
    probe = _Probe(expected)
    runner.register_hook(probe)
    runner.train()
    assert probe.checked
    assert 0.0 <= probe.metrics['accuracy/top1'] <= 100.0
    # Frozen: the backbone (weights and BN statistics) did not move.
    backbone = runner.model.backbone
    assert not any(p.requires_grad for p in backbone.parameters())
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
