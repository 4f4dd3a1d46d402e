"""Give each site of a loopback federation its client's images.

For trying a federation on one machine, and for checking it against the
in-process loop: site ``k`` gets exactly client ``k``'s share of the
config's partition, in the same order, as its own Fashion-MNIST folder.
"""
import gzip
import os
import os.path as osp
from typing import List

import numpy as np
from mmengine.config import Config

from decssl_mm.datasets.fashion_mnist import _FILES, _find, read_idx
from decssl_mm.registry import DATASETS


def write_idx(path: str, arr: np.ndarray) -> None:
    """Write a uint8 array as a gzip IDX file."""
    header = bytes([0, 0, 0x08, arr.ndim])
    header += b''.join(int(d).to_bytes(4, 'big') for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + np.ascontiguousarray(arr, np.uint8).tobytes())


def split_fmnist_sites(cfg: Config, out_dir: str) -> List[str]:
    """Write ``out_dir/site<k>/`` with client ``k``'s training images.

    Args:
        cfg (Config): A config whose ``train_dataloader.dataset`` is a
            ``ClientPartitionedDataset`` over ``FashionMNISTGz``.
        out_dir (str): Where the site folders go.

    Returns:
        list[str]: The site folders, by client id.
    """
    import decssl_mm  # noqa: F401 - registers the datasets
    wrapper = dict(cfg.train_dataloader.dataset)
    inner = dict(wrapper['dataset'])
    if inner.get('type') not in ('FashionMNISTGz', 'decssl_mm.FashionMNISTGz'):
        raise ValueError('split_fmnist_sites needs a FashionMNISTGz dataset, '
                         f"got {inner.get('type')!r}.")
    inner['pipeline'] = []
    wrapper['dataset'] = inner
    data = DATASETS.build(wrapper)
    root = inner['data_root']
    img_name, label_name = _FILES[inner.get('split', 'train')]
    images = read_idx(_find(root, img_name))
    labels = read_idx(_find(root, label_name))
    dirs = []
    for k in range(data.num_clients):
        idx = data.client_indices(k)
        site = osp.join(out_dir, f'site{k}')
        os.makedirs(site, exist_ok=True)
        write_idx(osp.join(site, img_name + '.gz'), images[idx])
        write_idx(osp.join(site, label_name + '.gz'), labels[idx])
        dirs.append(site)
    return dirs
