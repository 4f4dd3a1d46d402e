"""Write a tiny COCO-format dataset (images, boxes, polygons, source ids).

Used by the tests and by ``tools/misc/make_tiny_warehouse.py`` to try
configs in seconds. The layout is the warehouse layout of
:class:`WarehouseDataset`::

    ROOT/annotations/train.json   ROOT/annotations/val.json
    ROOT/images/<source>/<id>.png

Every image has a ``source_id`` (``'robot_0'``, ``'robot_1'``, ...); objects
are filled rectangles and triangles, one colour per category, annotated with
their polygon, its bounding box and area.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = ['make_tiny_coco', 'DEFAULT_CATEGORIES']

DEFAULT_CATEGORIES = ('box', 'pallet', 'person')


def _polygon(rng: np.random.Generator, size: int, kind: int) -> List[float]:
    """A rectangle (kind 0) or triangle (kind 1) inside the image."""
    w, h = rng.integers(max(size // 6, 4), max(size // 2, 6), size=2)
    x0 = int(rng.integers(0, size - w))
    y0 = int(rng.integers(0, size - h))
    x1, y1 = x0 + int(w), y0 + int(h)
    if kind == 0:
        pts = [x0, y0, x1, y0, x1, y1, x0, y1]
    else:
        pts = [x0, y1, (x0 + x1) / 2, y0, x1, y1]
    return [float(p) for p in pts]


def _area(poly: Sequence[float]) -> float:
    x, y = np.asarray(poly[0::2]), np.asarray(poly[1::2])
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def _bbox(poly: Sequence[float]) -> List[float]:
    x, y = poly[0::2], poly[1::2]
    return [min(x), min(y), max(x) - min(x), max(y) - min(y)]


def _colour(label: int) -> tuple:
    return ((70 + 97 * label) % 256, (200 + 53 * label) % 256,
            (30 + 151 * label) % 256)


def _write_split(root: str, name: str, images: list, annotations: list,
                 categories: list) -> str:
    path = osp.join(root, 'annotations', name)
    with open(path, 'w') as f:
        json.dump(
            dict(
                info=dict(description='tiny COCO-format dataset'),
                licenses=[],
                images=images,
                annotations=annotations,
                categories=categories), f)
    return path


def make_tiny_coco(root: str,
                   num_images: int = 8,
                   size: int = 64,
                   num_sources: int = 2,
                   seed: int = 0,
                   categories: Sequence[str] = DEFAULT_CATEGORIES,
                   num_val: int = 2,
                   max_objects: int = 3,
                   num_empty: int = 0,
                   num_used_categories: Optional[int] = None
                   ) -> Dict[str, object]:
    """Write ``num_images`` training and ``num_val`` validation images.

    Args:
        root (str): Output folder (created).
        num_images (int): Images in ``annotations/train.json``.
            Defaults to 8.
        size (int): Side of the square images. Defaults to 64.
        num_sources (int): Distinct ``source_id`` values, dealt round-robin.
            Defaults to 2.
        seed (int): Random seed. Defaults to 0.
        categories (Sequence[str]): Category names (ids 1, 2, ...).
        num_val (int): Images in ``annotations/val.json`` (other images).
            Defaults to 2.
        max_objects (int): Objects per image, 1 to this. Defaults to 3.
        num_empty (int): The first ``num_empty`` training images get no
            annotations. Defaults to 0.
        num_used_categories (int, optional): Draw objects from the first
            this many categories only (e.g. a few of the 80 COCO names).

    Returns:
        dict: ``root``, ``img_dir``, ``train_json``, ``val_json``,
        ``classes`` and ``sources``.
    """
    if num_images < 1 or num_sources < 1 or size < 16:
        raise ValueError('need num_images >= 1, num_sources >= 1 and '
                         f'size >= 16, got {num_images}, {num_sources}, '
                         f'{size}')
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'images')
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    cats = [dict(id=i + 1, name=str(n), supercategory='object')
            for i, n in enumerate(categories)]
    used = len(cats) if num_used_categories is None else min(
        num_used_categories, len(cats))
    sources = [f'robot_{s}' for s in range(num_sources)]
    splits = {'train': ([], []), 'val': ([], [])}
    ann_id = 1
    for idx in range(num_images + num_val):
        split = 'train' if idx < num_images else 'val'
        source = sources[idx % num_sources]
        file_name = f'{source}/{idx + 1:06d}.png'
        noise = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
        img = Image.fromarray(noise + np.uint8(20 * (idx % num_sources)))
        draw = ImageDraw.Draw(img)
        n_obj = 0 if idx < num_empty else int(rng.integers(1, max_objects + 1))
        for _ in range(n_obj):
            label = int(rng.integers(0, used))
            poly = _polygon(rng, size, label % 2)
            draw.polygon(poly, fill=_colour(label))
            splits[split][1].append(
                dict(id=ann_id, image_id=idx + 1, category_id=label + 1,
                     bbox=_bbox(poly), area=_area(poly), iscrowd=0,
                     segmentation=[poly]))
            ann_id += 1
        os.makedirs(osp.join(img_dir, source), exist_ok=True)
        img.save(osp.join(img_dir, file_name))
        splits[split][0].append(
            dict(id=idx + 1, file_name=file_name, width=size, height=size,
                 source_id=source))
    return dict(
        root=root,
        img_dir=img_dir,
        train_json=_write_split(root, 'train.json', *splits['train'], cats),
        val_json=_write_split(root, 'val.json', *splits['val'], cats),
        classes=tuple(str(n) for n in categories),
        sources=tuple(sources))
