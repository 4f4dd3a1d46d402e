"""Build partitioners and partitions from config dicts."""
import copy
from typing import Optional, Union

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .partition import Partition

__all__ = ['build_partitioner', 'build_partition', 'recipe_to_cfg']


def recipe_to_cfg(recipe: dict) -> dict:
    """Turn a :attr:`Partition.recipe` back into a partitioner config.

    Args:
        recipe (dict): ``dict(type=..., params=dict(...), seed=...)``.

    Returns:
        dict: ``dict(type=..., seed=..., **params)``.
    """
    if not isinstance(recipe, dict) or 'type' not in recipe:
        raise ValueError(
            f'recipe must be a dict with a "type", got {recipe!r}')
    cfg = dict(type=recipe['type'], **recipe.get('params', {}))
    if 'seed' in recipe:
        cfg['seed'] = recipe['seed']
    return cfg


def build_partitioner(
        cfg: Union[dict, BasePartitioner]) -> BasePartitioner:
    """Build a partitioner from ``dict(type=<name>, **kwargs)``.

    Args:
        cfg (dict | BasePartitioner): The config (a recipe with ``params``
            is accepted too) or an already built partitioner.

    Returns:
        BasePartitioner: The partitioner.
    """
    if isinstance(cfg, BasePartitioner):
        return cfg
    if not isinstance(cfg, dict):
        raise ValueError('partition config must be a dict such as '
                         "dict(type='Dirichlet', num_clients=10, alpha=0.1), "
                         f'got {type(cfg).__name__}')
    cfg = copy.deepcopy(dict(cfg))
    if 'params' in cfg and isinstance(cfg['params'], dict):
        cfg = recipe_to_cfg(cfg)
    name = cfg.get('type')
    names = sorted(PARTITIONERS.module_dict)
    if isinstance(name, type) and issubclass(name, BasePartitioner):
        pass
    elif not isinstance(name, str) or PARTITIONERS.get(name) is None:
        raise ValueError(f'unknown partition type {name!r}; registered '
                         f'partitioners: {", ".join(names)}')
    partitioner = PARTITIONERS.build(cfg)
    if not isinstance(partitioner, BasePartitioner):
        raise ValueError(f'partition type {name!r} built a '
                         f'{type(partitioner).__name__}, not a partitioner')
    return partitioner


def build_partition(cfg: Union[dict, BasePartitioner],
                    labels: np.ndarray,
                    features: Optional[np.ndarray] = None) -> Partition:
    """Build the partitioner described by ``cfg`` and split ``labels``.

    Args:
        cfg (dict | BasePartitioner): e.g.
            ``dict(type='Dirichlet', num_clients=10, alpha=0.1, seed=0)``.
        labels (np.ndarray): One key per sample.
        features (np.ndarray, optional): ``(N, D)`` features for
            feature-based partitioners. Defaults to None.

    Returns:
        Partition: The partition.
    """
    return build_partitioner(cfg)(labels, features)
