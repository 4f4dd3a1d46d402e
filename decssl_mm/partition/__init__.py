"""Client partitions: split a dataset's samples among federated clients.

Partitioners look at one key per sample (a label, a robot id, a dominant
category, ...) or at feature vectors, never at images, and return a
:class:`Partition` of global sample indices. See ``docs/partitions.md``.
"""
from .base import BasePartitioner
from .builder import build_partition, build_partitioner, recipe_to_cfg
from .dirichlet import Dirichlet
from .feature_cluster import FeatureCluster
from .iid import IID
from .natural_id import NaturalId
from .partition import Partition, fingerprint_of, format_table
from .pathological import Pathological
from .quantity import Quantity
from .shards import Shards
from .skew import Skew

__all__ = [
    'BasePartitioner', 'Partition', 'fingerprint_of', 'format_table',
    'build_partition', 'build_partitioner', 'recipe_to_cfg', 'IID',
    'Dirichlet', 'Pathological', 'Shards', 'Skew', 'Quantity',
    'FeatureCluster', 'NaturalId'
]
