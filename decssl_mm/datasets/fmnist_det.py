"""FMNIST-Det: detection and instance segmentation on Fashion-MNIST items.

Canvases (default 96 px, RGB) hold 2-4 Fashion-MNIST items each, pasted at
varied sizes and positions on varied backgrounds, with COCO-format boxes,
instance masks (compressed RLE) from the item's own pixels, the item's
category and a ``source_id`` per image. Items come from the **test split**
(``t10k-*``), which pretraining never reads; training canvases and
validation canvases draw from two disjoint halves of it.

Four sites (``source_id``) differ in background and class mix, so the set
is also a natural non-IID federated set (a ``NaturalId`` split on
``source_id``):

=================  ===========================================  ==========
site               background                                   frequent
                                                                classes
=================  ===========================================  ==========
``site_plain``     dark uniform grey with mild noise (closest   tops
                   to the pretraining images)
``site_gradient``  linear gradient between two random colours   footwear
``site_texture``   smooth colour blobs (low-frequency noise)    trousers,
                                                                dresses,
                                                                bags
``site_clutter``   mid-grey with random coloured rectangles,    none
                   ellipses and lines (distractor edges)        (uniform)
=================  ===========================================  ==========

A *frequent* class is drawn ``FREQUENT_WEIGHT`` (4) times as often as any
other class of its site; every class occurs at every site. Image ``i`` of a
split belongs to site ``i % 4``.

Each item is the 28x28 grey image resized (bilinear) to a side drawn from
``item_sizes``; its mask is the resized item's pixels above
``mask_threshold``, and exactly those pixels are pasted (grey, the same
value in R, G and B) over the background. Items never overlap (their boxes
are at least 1 px apart), so every mask is the whole visible item and every
box the tight box of its mask. Every annotation records where its item came
from (``item``: test-split index, pasted side, top-left corner), so a test
can rebuild it.

Everything is decided by ``seed``: the split of the test items into a
training and a validation pool, and each canvas from its own random stream
(``(seed, split, index)``), so canvas ``i`` does not depend on how many
canvases are made.

The layout is that of :class:`WarehouseDataset`::

    ROOT/annotations/train.json   ROOT/annotations/val.json
    ROOT/images/<site>/<split>_<index>.png
"""
import json
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .fashion_mnist import DEFAULT_ROOT, FASHION_MNIST_CLASSES, _find, \
    read_idx

__all__ = [
    'FMNIST_DET_SITES', 'FREQUENT_WEIGHT', 'SiteSpec', 'make_fmnist_det',
    'load_fmnist_items', 'site_class_probs'
]

FREQUENT_WEIGHT = 4.0
_SPLIT_CODES = {'train': 0, 'val': 1}


class SiteSpec(NamedTuple):
    """One site of FMNIST-Det.

    Args:
        name (str): The ``source_id`` of its images.
        background (str): ``'plain'``, ``'gradient'``, ``'texture'`` or
            ``'clutter'``.
        frequent (tuple[int]): Fashion-MNIST labels drawn
            ``FREQUENT_WEIGHT`` times as often as the others.
    """
    name: str
    background: str
    frequent: Tuple[int, ...]


FMNIST_DET_SITES = (
    SiteSpec('site_plain', 'plain', (0, 2, 4, 6)),  # tops
    SiteSpec('site_gradient', 'gradient', (5, 7, 9)),  # footwear
    SiteSpec('site_texture', 'texture', (1, 3, 8)),  # trousers, dresses, bags
    SiteSpec('site_clutter', 'clutter', ()),  # uniform
)


def site_class_probs(site: SiteSpec,
                     num_classes: int = len(FASHION_MNIST_CLASSES)
                     ) -> np.ndarray:
    """The probability of each label for an item of ``site``."""
    w = np.ones(num_classes)
    w[list(site.frequent)] = FREQUENT_WEIGHT
    return w / w.sum()


def load_fmnist_items(fmnist_root: str = DEFAULT_ROOT
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST test split: ``(images (N, 28, 28) uint8, labels)``.
    """
    images = read_idx(_find(fmnist_root, 't10k-images-idx3-ubyte'))
    labels = read_idx(_find(fmnist_root, 't10k-labels-idx1-ubyte'))
    if len(images) != len(labels):
        raise ValueError(f'{fmnist_root}: {len(images)} test images but '
                         f'{len(labels)} labels')
    return images, labels


# ------------------------------------------------------------ backgrounds
def _background(kind: str, size: int, rng: np.random.Generator
                ) -> np.ndarray:
    """An RGB background, uint8 (size, size, 3)."""
    if kind == 'plain':
        level = rng.uniform(0, 60)
        bg = level + rng.normal(0, 6, (size, size, 1))
        bg = np.repeat(bg, 3, axis=2)
    elif kind == 'gradient':
        c0, c1 = rng.uniform(0, 170, (2, 3))
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        t = np.cos(theta) * xx + np.sin(theta) * yy
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        bg = c0 + (c1 - c0) * t[..., None]
        bg = bg + rng.normal(0, 4, (size, size, 1))
    elif kind == 'texture':
        cells = int(rng.integers(4, 9))
        grid = rng.uniform(0, 180, (cells, cells, 3)).astype(np.uint8)
        bg = np.asarray(
            Image.fromarray(grid).resize((size, size), Image.BICUBIC),
            dtype=np.float64)
    elif kind == 'clutter':
        base = rng.uniform(60, 140)
        img = Image.fromarray(
            np.full((size, size, 3), base, dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(6, 13))):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x0, y0 = (int(v) for v in rng.integers(0, size, 2))
            x1 = x0 + int(rng.integers(4, size // 3))
            y1 = y0 + int(rng.integers(4, size // 3))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                draw.rectangle([x0, y0, x1, y1], fill=colour)
            elif shape == 1:
                draw.ellipse([x0, y0, x1, y1], fill=colour)
            else:
                draw.line([x0, y0, x1, y1], fill=colour,
                          width=int(rng.integers(1, 4)))
        bg = np.asarray(img, dtype=np.float64)
    else:
        raise ValueError(f'unknown background {kind!r}; expected plain, '
                         'gradient, texture or clutter')
    return np.clip(np.rint(bg), 0, 255).astype(np.uint8)


# ------------------------------------------------------------ items
def resize_item(item: np.ndarray, side: int) -> np.ndarray:
    """A 28x28 grey item resized (bilinear) to ``side`` x ``side``."""
    return np.asarray(
        Image.fromarray(item).resize((side, side), Image.BILINEAR))


def _tight_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of a mask's pixels, ``x1``/``y1`` exclusive."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _overlaps(box: Sequence[int], others: Sequence[Sequence[int]],
              gap: int = 1) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + gap and b[0] < x1 + gap and y0 < b[3] + gap
               and b[1] < y1 + gap for b in others)


def _rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a full-canvas bool mask (json-ready)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']],
                counts=rle['counts'].decode('ascii'))


def _canvas(site: SiteSpec, size: int, rng: np.random.Generator,
            pool: np.ndarray, labels: np.ndarray, images: np.ndarray,
            by_class: Dict[int, np.ndarray], item_sizes: Tuple[int, int],
            items_per_image: Tuple[int, int], mask_threshold: int,
            min_area: int) -> Tuple[np.ndarray, List[dict]]:
    """One canvas and its instances (without ids)."""
    img = _background(site.background, size, rng)
    probs = site_class_probs(site)
    wanted = int(rng.integers(items_per_image[0], items_per_image[1] + 1))
    boxes: List[Tuple[int, int, int, int]] = []
    instances = []
    for _ in range(wanted):
        label = int(rng.choice(len(probs), p=probs))
        candidates = by_class.get(label)
        if candidates is None or not len(candidates):
            continue
        index = int(candidates[rng.integers(len(candidates))])
        side = int(rng.integers(item_sizes[0], item_sizes[1] + 1))
        patch = resize_item(images[index], side)
        local = patch > mask_threshold
        if local.sum() < min_area:
            continue
        lx0, ly0, lx1, ly1 = _tight_box(local)
        for _attempt in range(20):
            x = int(rng.integers(0, size - side + 1))
            y = int(rng.integers(0, size - side + 1))
            box = (x + lx0, y + ly0, x + lx1, y + ly1)
            if not _overlaps(box, boxes):
                break
        else:
            continue
        boxes.append(box)
        region = img[y:y + side, x:x + side]
        region[local] = patch[local][:, None]
        mask = np.zeros((size, size), dtype=bool)
        mask[y:y + side, x:x + side] = local
        instances.append(
            dict(
                category_id=label + 1,
                bbox=[float(box[0]), float(box[1]),
                      float(box[2] - box[0]), float(box[3] - box[1])],
                area=float(mask.sum()),
                iscrowd=0,
                segmentation=_rle(mask),
                item=dict(split='test', index=index, side=side, x=x, y=y)))
    return img, instances


def _check_args(num_train: int, num_val: int, size: int,
                item_sizes: Sequence[int], items_per_image: Sequence[int],
                mask_threshold: int) -> None:
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train}, {num_val}')
    if len(item_sizes) != 2 or not 8 <= item_sizes[0] <= item_sizes[1]:
        raise ValueError('item_sizes must be (min, max) with 8 <= min <= '
                         f'max, got {item_sizes}')
    if item_sizes[1] > size:
        raise ValueError(f'item_sizes max {item_sizes[1]} exceeds the '
                         f'canvas size {size}')
    if len(items_per_image) != 2 or not \
            1 <= items_per_image[0] <= items_per_image[1]:
        raise ValueError('items_per_image must be (min, max) with 1 <= min '
                         f'<= max, got {items_per_image}')
    if not 0 <= mask_threshold < 255:
        raise ValueError(
            f'mask_threshold must be in [0, 255), got {mask_threshold}')


def make_fmnist_det(root: str,
                    num_train: int = 2000,
                    num_val: int = 400,
                    size: int = 96,
                    seed: int = 0,
                    fmnist_root: str = DEFAULT_ROOT,
                    item_sizes: Tuple[int, int] = (24, 48),
                    items_per_image: Tuple[int, int] = (2, 4),
                    mask_threshold: int = 25,
                    min_area: int = 20,
                    items: Optional[Tuple[np.ndarray, np.ndarray]] = None
                    ) -> Dict[str, object]:
    """Write FMNIST-Det (see the module's docstring) under ``root``.

    Args:
        root (str): Output folder (created).
        num_train (int): Canvases of ``annotations/train.json``.
            Defaults to 2000.
        num_val (int): Canvases of ``annotations/val.json``. Defaults to 400.
        size (int): Side of the square canvases. Defaults to 96.
        seed (int): Seed of everything. Defaults to 0.
        fmnist_root (str): Folder of the Fashion-MNIST IDX files.
        item_sizes (tuple[int, int]): Smallest and largest side of a pasted
            item (inclusive). Defaults to (24, 48).
        items_per_image (tuple[int, int]): Items tried per canvas, min and
            max (inclusive); an item that finds no free place after 20
            tries is left out. Defaults to (2, 4).
        mask_threshold (int): A resized item's pixel above this belongs to
            its mask (and is pasted). Defaults to 25.
        min_area (int): Items with fewer mask pixels are left out.
            Defaults to 20.
        items (tuple, optional): ``(images, labels)`` to draw from instead
            of the Fashion-MNIST test split.

    Returns:
        dict: ``root``, ``img_dir``, ``train_json``, ``val_json``,
        ``classes`` and ``sources``.
    """
    _check_args(num_train, num_val, size, item_sizes, items_per_image,
                mask_threshold)
    images, labels = items if items is not None else load_fmnist_items(
        fmnist_root)
    labels = np.asarray(labels).astype(np.int64)
    perm = np.random.default_rng([seed, 7]).permutation(len(images))
    half = len(perm) // 2
    pools = {'train': np.sort(perm[:half]), 'val': np.sort(perm[half:])}
    cats = [dict(id=i + 1, name=n, supercategory='clothing')
            for i, n in enumerate(FASHION_MNIST_CLASSES)]
    info = dict(
        description='FMNIST-Det: Fashion-MNIST test-split items on '
        'varied backgrounds (decssl_mm.datasets.fmnist_det)',
        seed=seed, size=size, item_sizes=list(item_sizes),
        items_per_image=list(items_per_image),
        mask_threshold=mask_threshold, min_area=min_area,
        sites=[s._asdict() for s in FMNIST_DET_SITES])
    img_dir = osp.join(root, 'images')
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for site in FMNIST_DET_SITES:
        os.makedirs(osp.join(img_dir, site.name), exist_ok=True)
    out = dict(root=root, img_dir=img_dir)
    ann_id = 1
    for split, count in (('train', num_train), ('val', num_val)):
        pool = pools[split]
        by_class = {c: pool[labels[pool] == c]
                    for c in range(len(FASHION_MNIST_CLASSES))}
        split_images, split_anns = [], []
        for i in range(count):
            site = FMNIST_DET_SITES[i % len(FMNIST_DET_SITES)]
            rng = np.random.default_rng([seed, _SPLIT_CODES[split], i])
            img, instances = _canvas(site, size, rng, pool, labels, images,
                                     by_class, item_sizes, items_per_image,
                                     mask_threshold, min_area)
            image_id = i + 1
            file_name = f'{site.name}/{split}_{i:06d}.png'
            Image.fromarray(img).save(osp.join(img_dir, file_name))
            split_images.append(
                dict(id=image_id, file_name=file_name, width=size,
                     height=size, source_id=site.name))
            for inst in instances:
                split_anns.append(dict(inst, id=ann_id, image_id=image_id))
                ann_id += 1
        path = osp.join(root, 'annotations', f'{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(info=dict(info, split=split), licenses=[],
                           images=split_images, annotations=split_anns,
                           categories=cats), f)
        out[f'{split}_json'] = path
    out.update(classes=FASHION_MNIST_CLASSES,
               sources=tuple(s.name for s in FMNIST_DET_SITES))
    return out
