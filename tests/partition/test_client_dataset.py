"""ClientPartitionedDataset over real mmpretrain and mmdet datasets."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from decssl_mm.datasets import (ClientPartitionedDataset, ClientSubset,
                                dominant_category)
from decssl_mm.partition import Partition
from decssl_mm.registry import DATASETS

CLASSES = ('apple', 'pear', 'plum')
PER_CLASS = 4


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('decssl_mm')


def write_image_folder(root: str, per_class: int = PER_CLASS) -> None:
    """Tiny RGB PNGs in one sub-folder per class."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        folder = osp.join(root, name)
        import os
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
            pixels[0, 0] = (c, i, 0)
            Image.fromarray(pixels).save(osp.join(folder, f'{i}.png'))


@pytest.fixture
def image_root(tmp_path):
    root = str(tmp_path / 'images')
    write_image_folder(root)
    return root


def custom_cfg(root: str, **kwargs) -> dict:
    return dict(
        type='CustomDataset',
        data_root=root,
        pipeline=[dict(type='LoadImageFromFile')],
        **kwargs)


def test_wraps_custom_dataset(image_root):
    ds = ClientPartitionedDataset(
        dataset=custom_cfg(image_root),
        partition=dict(type='Pathological', num_clients=3,
                       classes_per_client=1, seed=0))
    assert len(ds) == 3 * PER_CLASS
    assert ds.num_clients == 3
    assert ds.client_sizes.tolist() == [PER_CLASS] * 3
    assert list(ds.metainfo['classes']) == list(CLASSES)
    assert ds.split_keys.tolist() == np.repeat(np.arange(3),
                                               PER_CLASS).tolist()
    seen = set()
    for k in range(3):
        sub = ds.client_subset(k)
        assert isinstance(sub, ClientSubset) and len(sub) == PER_CLASS
        assert sub.dataset is ds.dataset
        labels = {sub.get_data_info(j)['gt_label'] for j in range(len(sub))}
        assert len(labels) == 1
        seen |= labels
        item = sub[-1]
        assert item['img'].shape == (8, 6, 3)  # the pipeline ran
        gidx = int(ds.client_indices(k)[-1])
        assert item['img_path'] == ds[gidx]['img_path']
        with pytest.raises(IndexError):
            sub[PER_CLASS]
    assert seen == {0, 1, 2}
    assert ds.get_data_info(0) == ds.dataset.get_data_info(0)


def test_dataset_instance_and_lazy_init(image_root):
    base = DATASETS.build(custom_cfg(image_root))
    ds = ClientPartitionedDataset(
        dataset=base,
        partition=dict(type='IID', num_clients=2),
        lazy_init=True)
    assert ds._partition is None
    assert 'not initialized' in repr(ds)
    assert ds.client_sizes.tolist() == [6, 6]
    assert ds.dataset is base


def test_save_and_load_partition_file(image_root, tmp_path):
    path = str(tmp_path / 'out' / 'part.json')
    ds = ClientPartitionedDataset(
        dataset=custom_cfg(image_root),
        partition=dict(type='Dirichlet', num_clients=2, alpha=1.0, seed=3),
        save_partition=path)
    again = ClientPartitionedDataset(
        dataset=custom_cfg(image_root), partition_file=path)
    assert again.partition == ds.partition
    assert Partition.load(path).recipe['type'] == 'Dirichlet'

    # The same file against a dataset with other samples.
    other_root = str(tmp_path / 'other')
    write_image_folder(other_root, per_class=3)
    with pytest.raises(ValueError, match='part.json'):
        ClientPartitionedDataset(
            dataset=custom_cfg(other_root), partition_file=path)
    # ... or with another split key.
    with pytest.raises(ValueError, match='fingerprint'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root),
            partition_file=path,
            split_key='img_path')


def test_missing_files_named(image_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root'):
        ClientPartitionedDataset(
            dataset=custom_cfg(str(tmp_path / 'nowhere')),
            partition=dict(type='IID', num_clients=2))
    with pytest.raises(FileNotFoundError, match='ann_file'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root, ann_file='meta/train.txt'),
            partition=dict(type='IID', num_clients=2))
    with pytest.raises(FileNotFoundError, match='partition_file'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root),
            partition_file=str(tmp_path / 'none.json'))
    with pytest.raises(ValueError, match='exactly one'):
        ClientPartitionedDataset(dataset=custom_cfg(image_root))


def test_empty_client_raises_unless_allowed(image_root):
    cfg = dict(type='Dirichlet', num_clients=10, alpha=0.01, min_size=0)
    with pytest.raises(ValueError, match=r'client \d+.*allow_empty_clients'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root), partition=cfg)
    ds = ClientPartitionedDataset(
        dataset=custom_cfg(image_root),
        partition=cfg,
        allow_empty_clients=True)
    assert (ds.client_sizes == 0).any()
    assert ds.client_sizes.sum() == len(ds)


def test_split_keys_from_fields_and_metainfo(image_root):
    ds = ClientPartitionedDataset(
        dataset=custom_cfg(image_root),
        partition=dict(type='NaturalId'),
        split_key='img_path')
    assert ds.num_clients == len(ds)  # string keys, one per image
    robots = ['r1', 'r2', 'r1', 'r3'] * 3
    ds = ClientPartitionedDataset(
        dataset=custom_cfg(
            image_root, metainfo=dict(classes=CLASSES, robot=robots)),
        partition=dict(type='NaturalId'),
        split_key='metainfo:robot')
    assert ds.client_sizes.tolist() == [6, 3, 3]
    with pytest.raises(ValueError, match='split_key'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root),
            partition=dict(type='IID', num_clients=2),
            split_key='robot_id')
    with pytest.raises(ValueError, match='split_key'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root),
            partition=dict(type='IID', num_clients=2),
            split_key='metainfo:robot')


def test_feature_cluster_with_features_file(image_root, tmp_path):
    feats = np.repeat(np.eye(3) * 10, PER_CLASS, axis=0)
    path = str(tmp_path / 'feats.npy')
    np.save(path, feats)
    ds = ClientPartitionedDataset(
        dataset=custom_cfg(image_root),
        partition=dict(
            type='FeatureCluster', num_clients=3, mode='one_per_client'),
        features_file=path)
    assert sorted(ds.client_sizes.tolist()) == [PER_CLASS] * 3
    np.save(path, feats[:-1])
    with pytest.raises(ValueError, match='features_file'):
        ClientPartitionedDataset(
            dataset=custom_cfg(image_root),
            partition=dict(type='FeatureCluster', num_clients=3),
            features_file=path)


def test_built_from_registry_by_config(image_root):
    ds = DATASETS.build(
        dict(
            type='ClientPartitionedDataset',
            dataset=custom_cfg(image_root),
            partition=dict(type='IID', num_clients=4)))
    assert isinstance(ds, ClientPartitionedDataset)
    assert ds.num_clients == 4


# ------------------------------------------------------------------ mmdet
def test_dominant_category():
    assert dominant_category([]) == -1
    instances = [
        dict(bbox=[0, 0, 2, 2], bbox_label=1, ignore_flag=0),
        dict(bbox=[0, 0, 2, 2], bbox_label=1, ignore_flag=0),
        dict(bbox=[0, 0, 3, 3], bbox_label=2, ignore_flag=0),
        dict(bbox=[0, 0, 9, 9], bbox_label=0, ignore_flag=1),
    ]
    # label 2 covers 9 > 8 (label 1); the crowd box of label 0 is ignored
    assert dominant_category(instances) == 2
    assert dominant_category(instances[3:]) == -1


def write_coco(root: str) -> None:
    import os
    os.makedirs(osp.join(root, 'imgs'), exist_ok=True)
    images, anns = [], []
    # (image id, [(category id, x, y, w, h), ...])
    layout = {
        1: [(10, 0, 0, 4, 4), (20, 0, 0, 2, 2), (20, 2, 2, 2, 2)],
        2: [(20, 0, 0, 5, 5)],
        3: [],
        4: [(30, 1, 1, 3, 3), (10, 0, 0, 2, 2)],
        5: [(30, 0, 0, 6, 6)],
    }
    for img_id, boxes in layout.items():
        name = f'{img_id:03d}.png'
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(
            osp.join(root, 'imgs', name))
        images.append(dict(id=img_id, file_name=name, width=16, height=16))
        for cat, x, y, w, h in boxes:
            anns.append(
                dict(id=len(anns) + 1, image_id=img_id, category_id=cat,
                     bbox=[x, y, w, h], area=w * h, iscrowd=0))
    cats = [dict(id=i, name=n) for i, n in ((10, 'box'), (20, 'pallet'),
                                             (30, 'robot'))]
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)


def coco_cfg(root: str, **kwargs) -> dict:
    return dict(
        type='mmdet.CocoDataset',
        data_root=root,
        ann_file='ann.json',
        data_prefix=dict(img='imgs/'),
        metainfo=dict(classes=('box', 'pallet', 'robot')),
        pipeline=[],
        **kwargs)


def test_coco_dominant_category_split(tmp_path):
    root = str(tmp_path / 'coco')
    write_coco(root)
    ds = ClientPartitionedDataset(
        dataset=coco_cfg(root),
        partition=dict(type='NaturalId', ignore_keys=[-1]))
    # dominant: img1 box (16 > 8), img2 pallet, img3 none, img4 robot (9 > 4)
    ids = [ds.get_data_info(i)['img_id'] for i in range(len(ds))]
    dominant = dict(zip(ids, ds.split_keys.tolist()))
    assert dominant == {1: 0, 2: 1, 3: -1, 4: 2, 5: 2}
    assert ds.num_clients == 3
    assert ds.partition.dropped == 1
    assert ds.client_sizes.tolist() == [1, 1, 2]
    sub = ds.client_subset(2)
    assert {sub.get_data_info(j)['img_id'] for j in range(len(sub))} == {4, 5}
    assert len(ds) == 5
    explicit = ClientPartitionedDataset(
        dataset=coco_cfg(root),
        partition=dict(type='IID', num_clients=2),
        split_key='dominant_category')
    assert explicit.split_keys.tolist() == ds.split_keys.tolist()


def test_coco_missing_ann_file(tmp_path):
    root = str(tmp_path / 'coco')
    write_coco(root)
    with pytest.raises(FileNotFoundError, match='ann_file'):
        ClientPartitionedDataset(
            dataset=dict(coco_cfg(root), ann_file='missing.json'),
            partition=dict(type='IID', num_clients=2))
