"""A COCO-format warehouse detection dataset with per-image sources."""
import copy
import os.path as osp
from typing import List, Tuple

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS as MMDET_DATASETS
from mmengine.fileio import get_local_path

__all__ = ['WarehouseDataset']

_MISSING_SOURCE = ('error', 'unknown')


@MMDET_DATASETS.register_module()
class WarehouseDataset(CocoDataset):
    """Detection / instance segmentation on warehouse images (COCO format).

    Registered in mmdet's ``DATASETS`` so that mmdet configs
    (``default_scope='mmdet'``) find it once ``decssl_mm`` is imported
    (``custom_imports``). Unlike :class:`mmdet.datasets.CocoDataset` the
    classes are not fixed: unless ``metainfo=dict(classes=...)`` selects
    some, they are the json's categories in increasing id order. Every data
    info gets the ``source_id`` of its image (the robot, station or camera
    that recorded it), e.g. for a natural-id federated split.

    Folder layout (paths in the json are relative to the image folder)::

        data/warehouse/
        ├── annotations/
        │   ├── train.json      # COCO instances json
        │   └── val.json
        └── images/
            ├── robot_a/000001.png
            └── station_3/000002.png

    The json is standard COCO (``images``, ``annotations`` with ``bbox``
    ``[x, y, w, h]``, ``area``, ``iscrowd`` and polygon or RLE
    ``segmentation``, ``categories``) with one extra field per image::

        {"id": 1, "file_name": "robot_a/000001.png", "width": 640,
         "height": 480, "source_id": "robot_a"}

    Args:
        missing_source (str): What an image without ``source_id`` gets:
            ``'error'`` (default) raises a ValueError naming the file and
            image; ``'unknown'`` uses the string ``'unknown'``.
        **kwargs: Arguments of :class:`mmdet.datasets.CocoDataset`, e.g.
            ``data_root='data/warehouse/'``,
            ``ann_file='annotations/train.json'``,
            ``data_prefix=dict(img='images/')``, ``filter_cfg``,
            ``pipeline``.
    """

    METAINFO = dict(classes=(), palette=[])

    def __init__(self, *args, missing_source: str = 'error', **kwargs):
        if missing_source not in _MISSING_SOURCE:
            raise ValueError(f'missing_source must be one of '
                             f'{_MISSING_SOURCE}, got {missing_source!r}')
        self.missing_source = missing_source
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read images, instances, classes and source ids from the json."""
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            coco = self.COCOAPI(local_path)
        self._set_classes(coco)
        self.cat_ids = coco.get_cat_ids(cat_names=self.metainfo['classes'])
        self.cat2label = {cid: i for i, cid in enumerate(self.cat_ids)}
        self.cat_img_map = copy.deepcopy(coco.cat_img_map)
        data_list = []
        for img_id in coco.get_img_ids():
            raw_img_info = dict(coco.load_imgs([img_id])[0], img_id=img_id)
            raw_ann_info = coco.load_anns(coco.get_ann_ids(img_ids=[img_id]))
            info = self.parse_data_info(
                dict(raw_img_info=raw_img_info, raw_ann_info=raw_ann_info))
            info['source_id'] = self._source_of(raw_img_info)
            data_list.append(info)
        return data_list

    def _set_classes(self, coco) -> None:
        """Take the classes from the json, or check the given ones."""
        cats = sorted(
            coco.dataset.get('categories', []), key=lambda c: c['id'])
        names = tuple(c['name'] for c in cats)
        if not names:
            raise ValueError(f'{self.ann_file}: no categories in the json')
        given = self._metainfo.get('classes')
        if given:
            missing = [c for c in given if c not in names]
            if missing:
                raise ValueError(
                    f'{self.ann_file}: metainfo classes {missing} are not '
                    f'categories of the json {list(names)}')
            return
        self._metainfo['classes'] = names
        self._metainfo['palette'] = _palette(len(names))

    def _source_of(self, img: dict):
        if 'source_id' in img:
            return img['source_id']
        if self.missing_source == 'unknown':
            return 'unknown'
        raise ValueError(
            f"{self.ann_file}: image {img['img_id']} "
            f"({osp.basename(img.get('file_name', '?'))}) has no 'source_id'; "
            "add it to every image entry or pass missing_source='unknown'")


def _palette(n: int) -> List[Tuple[int, int, int]]:
    """``n`` distinct, deterministic RGB colours."""
    return [((37 * i + 60) % 256, (91 * i + 120) % 256, (163 * i + 200) % 256)
            for i in range(n)]
