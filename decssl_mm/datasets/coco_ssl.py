"""COCO images for self-supervised pre-training."""
import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.fileio import get_local_path

from decssl_mm.registry import DATASETS
from .client_dataset import dominant_category

__all__ = ['CocoSSLDataset']


@DATASETS.register_module()
class CocoSSLDataset(BaseDataset):
    """The images of a COCO-format dataset, without labels, for SSL.

    Self-supervised training reads the images only; the annotations of the
    instances json (read with pycocotools) give every image keys that a
    federated partition may split on, e.g.
    ``ClientPartitionedDataset(split_key='dominant_category')``:

    - ``img_path``, ``img_id``, ``width``, ``height``;
    - ``dominant_category``: the label whose non-crowd boxes cover the
      largest total area (ties to the smaller label), -1 for an image without
      non-crowd annotations;
    - ``num_instances``: the number of non-crowd annotations;
    - ``category_set``: the sorted distinct labels of those annotations;
    - ``source_id``: copied from the image entry when it has one (e.g. the
      robot or camera of a warehouse image, see ``WarehouseDataset``).

    Labels are contiguous indices into ``metainfo['classes']``, the json
    categories in increasing id order (COCO 2017: the 80 classes).

    Args:
        ann_file (str): The instances json, e.g.
            ``'annotations/instances_train2017.json'``.
        data_root (str): Root that ``ann_file`` and ``data_prefix`` are
            relative to, e.g. ``'data/coco/'``.
        data_prefix (dict | str): The image folder, ``dict(img_path=...)``
            or, as in mmdet, ``dict(img='train2017/')``.
        pipeline (Sequence): Transforms, starting with
            ``LoadImageFromFile``.
        drop_empty (bool): Leave out images without non-crowd annotations.
            Defaults to False (SSL can use every image).
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``test_mode``, ``lazy_init``, ``max_refetch``, ...).
    """

    METAINFO = dict(classes=())

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = dict(img_path=''),
                 pipeline: Sequence = (),
                 drop_empty: bool = False,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        self.drop_empty = drop_empty
        self.backend_args = backend_args
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the image list and the image-level keys from the json."""
        from pycocotools.coco import COCO
        if not osp.isfile(self.ann_file) and '://' not in self.ann_file:
            raise FileNotFoundError(
                f'CocoSSLDataset: annotation file not found: {self.ann_file}')
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as path:
            coco = COCO(path)
        cat_ids = sorted(coco.getCatIds())
        cat2label = {cid: i for i, cid in enumerate(cat_ids)}
        if not self._metainfo.get('classes'):
            self._metainfo['classes'] = tuple(
                coco.loadCats(cid)[0]['name'] for cid in cat_ids)
        img_root = self.data_prefix.get('img_path',
                                        self.data_prefix.get('img', ''))
        data_list = []
        for img_id in sorted(coco.getImgIds()):
            img = coco.loadImgs(img_id)[0]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
            info = self._image_info(img, anns, cat2label, img_root)
            if self.drop_empty and info['num_instances'] == 0:
                continue
            data_list.append(info)
        return data_list

    @staticmethod
    def _image_info(img: dict, anns: List[dict], cat2label: dict,
                    img_root: str) -> dict:
        instances = []
        for ann in anns:
            if ann.get('iscrowd', 0) or ann['category_id'] not in cat2label:
                continue
            x, y, w, h = ann['bbox']
            instances.append(
                dict(bbox=[x, y, x + w, y + h],
                     bbox_label=cat2label[ann['category_id']]))
        info = dict(
            img_path=osp.join(img_root, img['file_name']),
            img_id=img['id'],
            width=img.get('width'),
            height=img.get('height'),
            dominant_category=dominant_category(instances),
            num_instances=len(instances),
            category_set=sorted({i['bbox_label'] for i in instances}))
        if 'source_id' in img:
            info['source_id'] = img['source_id']
        return info
