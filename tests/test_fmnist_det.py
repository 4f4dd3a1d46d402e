"""FMNIST-Det (decssl_mm.datasets.fmnist_det): determinism, boxes and masks
against the pasted items, sites, and reading it with WarehouseDataset."""
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from decssl_mm.datasets.fashion_mnist import DEFAULT_ROOT
from decssl_mm.datasets.fmnist_det import (FMNIST_DET_SITES,
                                           load_fmnist_items,
                                           make_fmnist_det, resize_item,
                                           site_class_probs)

pytestmark = pytest.mark.skipif(
    not osp.isfile(osp.join(DEFAULT_ROOT, 't10k-images-idx3-ubyte.gz')),
    reason='needs the Debian package dataset-fashion-mnist')


def _digest(out: dict) -> str:
    """A hash of both jsons and every image file."""
    h = hashlib.sha1()
    for split in ('train', 'val'):
        data = json.load(open(out[f'{split}_json']))
        h.update(json.dumps(data, sort_keys=True).encode())
        for img in data['images']:
            with open(osp.join(out['img_dir'], img['file_name']), 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def fmnist_items():
    return load_fmnist_items()


@pytest.fixture(scope='module')
def det_set(tmp_path_factory, fmnist_items):
    return make_fmnist_det(
        str(tmp_path_factory.mktemp('fdet')), num_train=64, num_val=8,
        seed=3, items=fmnist_items)


def _anns(out: dict, split: str = 'train') -> dict:
    return json.load(open(out[f'{split}_json']))


def test_deterministic_by_seed(det_set, fmnist_items, tmp_path):
    again = make_fmnist_det(str(tmp_path / 'again'), num_train=64,
                            num_val=8, seed=3, items=fmnist_items)
    assert _digest(again) == _digest(det_set)
    other = make_fmnist_det(str(tmp_path / 'other'), num_train=64,
                            num_val=8, seed=4, items=fmnist_items)
    assert _digest(other) != _digest(det_set)
    # Canvas i does not depend on how many canvases are made.
    few = make_fmnist_det(str(tmp_path / 'few'), num_train=5, num_val=2,
                          seed=3, items=fmnist_items)
    full, part = _anns(det_set), _anns(few)
    assert part['images'] == full['images'][:5]
    assert part['annotations'] == [a for a in full['annotations']
                                   if a['image_id'] <= 5]
    for img in part['images']:
        a = np.asarray(Image.open(osp.join(few['img_dir'],
                                           img['file_name'])))
        b = np.asarray(Image.open(osp.join(det_set['img_dir'],
                                           img['file_name'])))
        assert np.array_equal(a, b)


def test_boxes_and_masks_match_pasted_items(det_set, fmnist_items):
    from pycocotools import mask as mask_utils
    images, labels = fmnist_items
    data = _anns(det_set)
    info = data['info']
    by_image = {}
    for ann in data['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    assert len(data['annotations']) >= 2 * len(data['images'])  # 2-4 tried
    for img in data['images']:
        canvas = np.asarray(
            Image.open(osp.join(det_set['img_dir'], img['file_name'])))
        assert canvas.shape == (96, 96, 3)
        union = np.zeros((96, 96), bool)
        for ann in by_image.get(img['id'], []):
            item = ann['item']
            assert item['split'] == 'test'
            assert ann['category_id'] == int(labels[item['index']]) + 1
            side, x, y = item['side'], item['x'], item['y']
            assert 24 <= side <= 48
            patch = resize_item(images[item['index']], side)
            local = patch > info['mask_threshold']
            expected = np.zeros((96, 96), bool)
            expected[y:y + side, x:x + side] = local
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            assert np.array_equal(mask, expected)
            assert ann['area'] == mask.sum() >= info['min_area']
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min()
                                   + 1, ys.max() - ys.min() + 1]
            # The pasted pixels are the item's own, grey in R, G and B.
            for c in range(3):
                assert np.array_equal(
                    canvas[y:y + side, x:x + side, c][local], patch[local])
            assert not (union & mask).any()  # items never overlap
            union |= mask


def test_pools_disjoint_and_sites(det_set):
    train, val = _anns(det_set, 'train'), _anns(det_set, 'val')
    train_items = {a['item']['index'] for a in train['annotations']}
    val_items = {a['item']['index'] for a in val['annotations']}
    assert train_items and val_items and not train_items & val_items
    names = [s.name for s in FMNIST_DET_SITES]
    assert [im['source_id'] for im in train['images'][:8]] == names * 2
    assert len(set(names)) == 4


def test_sites_differ_in_background_and_class_mix(tmp_path, fmnist_items):
    out = make_fmnist_det(str(tmp_path), num_train=160, num_val=1, seed=0,
                          items=fmnist_items)
    data = _anns(out)
    site_of = {im['id']: im['source_id'] for im in data['images']}
    counts = {s.name: np.zeros(10) for s in FMNIST_DET_SITES}
    for ann in data['annotations']:
        counts[site_of[ann['image_id']]][ann['category_id'] - 1] += 1
    for site in FMNIST_DET_SITES:
        c = counts[site.name]
        probs = site_class_probs(site)
        if site.frequent:
            share = c[list(site.frequent)].sum() / c.sum()
            expected = probs[list(site.frequent)].sum()
            assert share > 0.5 and abs(share - expected) < 0.15, site
        else:
            assert np.allclose(probs, 0.1)
            assert c.max() / c.sum() < 0.25, site
    # Backgrounds: outside the items, 'plain' is grey and dark, the others
    # coloured; 'clutter' has the most edges.
    masks = {}
    from pycocotools import mask as mask_utils
    for ann in data['annotations']:
        m = mask_utils.decode(ann['segmentation']).astype(bool)
        masks[ann['image_id']] = masks.get(ann['image_id'], False) | m
    stats = {s.name: dict(colour=[], mean=[], edges=[])
             for s in FMNIST_DET_SITES}
    for im in data['images']:
        px = np.asarray(Image.open(osp.join(out['img_dir'],
                                            im['file_name']))).astype(float)
        bg = ~np.asarray(masks.get(im['id'], np.zeros((96, 96), bool)))
        s = stats[im['source_id']]
        s['colour'].append(np.abs(px[..., 0] - px[..., 2])[bg].mean())
        s['mean'].append(px[bg].mean())
        grad = np.abs(np.diff(px.mean(2), axis=1))[:, :-1]
        s['edges'].append((grad[bg[:, :-2]] > 40).mean())
    mean = {k: {q: float(np.mean(v)) for q, v in s.items()}
            for k, s in stats.items()}
    assert mean['site_plain']['colour'] < 1.0
    assert mean['site_plain']['mean'] < 45
    for name in ('site_gradient', 'site_texture', 'site_clutter'):
        assert mean[name]['colour'] > 10, (name, mean[name])
    assert mean['site_clutter']['edges'] > 2 * max(
        mean[n]['edges'] for n in ('site_plain', 'site_gradient',
                                   'site_texture'))


def test_read_by_warehouse_dataset(det_set):
    from decssl_mm.datasets import WarehouseDataset
    ds = WarehouseDataset(
        data_root=det_set['root'], ann_file='annotations/val.json',
        data_prefix=dict(img='images/'), pipeline=[])
    assert len(ds.metainfo['classes']) == 10
    assert ds.metainfo['classes'][0] == 'T-shirt/top'
    info = ds.get_data_info(0)
    assert info['source_id'] == 'site_plain' and osp.isfile(info['img_path'])
    assert info['instances'] and isinstance(info['instances'][0]['mask'],
                                            dict)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='item_sizes'):
        make_fmnist_det(str(tmp_path), size=32, item_sizes=(24, 48))
    with pytest.raises(FileNotFoundError, match='nowhere'):
        make_fmnist_det(str(tmp_path), fmnist_root=str(tmp_path / 'nowhere'))
