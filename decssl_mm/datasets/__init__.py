"""Datasets and dataset wrappers of decssl_mm."""
from .client_dataset import (ClientPartitionedDataset, ClientSubset,
                             dominant_category)
from .fashion_mnist import FashionMNISTGz, read_idx
from .seeding import seeded
from .transforms import GrayToRGB
from .coco_ssl import CocoSSLDataset
from .tiny_coco import make_tiny_coco

try:  # mmdet is an optional ('downstream') dependency
    from .warehouse import WarehouseDataset
except ModuleNotFoundError as e:  # pragma: no cover
    if e.name != 'mmdet':
        raise
    WarehouseDataset = None

__all__ = [
    'ClientPartitionedDataset', 'ClientSubset', 'dominant_category',
    'FashionMNISTGz', 'read_idx', 'seeded', 'GrayToRGB'
]
__all__ += ['CocoSSLDataset', 'make_tiny_coco', 'WarehouseDataset']
