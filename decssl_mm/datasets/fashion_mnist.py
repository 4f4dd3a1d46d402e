"""Fashion-MNIST read straight from its gzip IDX files (no download)."""
import gzip
import os.path as osp
from typing import List, Optional

import numpy as np
from mmengine.dataset import BaseDataset

from decssl_mm.registry import DATASETS

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress',
                         'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot')
DEFAULT_ROOT = '/usr/share/datasets/fashion-mnist'
_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array.

    Args:
        path (str): ``*.idx?-ubyte`` or ``*.idx?-ubyte.gz``.

    Returns:
        np.ndarray: uint8 array of the shape stored in the header.
    """
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f'{path} is not an unsigned-byte IDX file.')
    ndim = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f'{path}: header says {shape}, found {arr.size} '
                         'values.')
    return arr.reshape(shape)


def _find(root: str, name: str) -> str:
    for cand in (osp.join(root, name + '.gz'), osp.join(root, name)):
        if osp.isfile(cand):
            return cand
    raise FileNotFoundError(
        f'Fashion-MNIST file {name}(.gz) not found under data_root={root!r}. '
        'Install it with `apt-get install dataset-fashion-mnist` or point '
        'data_root at a folder holding the IDX files.')


@DATASETS.register_module()
class FashionMNISTGz(BaseDataset):
    """Fashion-MNIST from the IDX files of the Debian package.

    Reads ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` under
    ``data_root`` (default: where ``apt-get install dataset-fashion-mnist``
    puts them). Never downloads. Each sample is a 28x28 uint8 grey image in
    ``results['img']`` and its label in ``gt_label``; use the ``GrayToRGB``
    transform to feed 3-channel backbones.

    Args:
        data_root (str): Folder of the IDX files.
        split (str): ``'train'`` (60k) or ``'test'`` (10k).
        subset (int, optional): Keep only the first ``subset`` samples of the
            split (for small experiments). Defaults to None.
        pipeline (list): Data pipeline.
        **kwargs: Other arguments of mmengine's ``BaseDataset``.
    """

    METAINFO = {'classes': FASHION_MNIST_CLASSES}

    def __init__(self,
                 data_root: str = DEFAULT_ROOT,
                 split: str = 'train',
                 subset: Optional[int] = None,
                 pipeline: list = (),
                 **kwargs) -> None:
        if split not in _FILES:
            raise ValueError(f"`split` must be 'train' or 'test', got "
                             f'{split!r}.')
        if subset is not None and subset < 1:
            raise ValueError(f'`subset` must be >= 1, got {subset}.')
        self.split = split
        self.subset = subset
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=list(pipeline),
            **kwargs)

    def load_data_list(self) -> List[dict]:
        img_name, label_name = _FILES[self.split]
        images = read_idx(_find(self.data_root, img_name))
        labels = read_idx(_find(self.data_root, label_name))
        if len(images) != len(labels):
            raise ValueError(f'{self.data_root}: {len(images)} images but '
                             f'{len(labels)} labels.')
        n = len(images) if self.subset is None else min(
            self.subset, len(images))
        return [{
            'img': images[i],
            'gt_label': int(labels[i])
        } for i in range(n)]
