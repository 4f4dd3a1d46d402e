"""Build partitioners and partitions from config dicts."""
import copy
from typing import Optional, Union

import numpy as np

from decssl_mm.registry import PARTITIONERS
from decssl_mm.utils.registry_utils import build_checked
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


def build_partitioner(cfg: Union[dict, BasePartitioner],
                      key: str = 'partition') -> BasePartitioner:
    """Build a partitioner from ``dict(type=<name>, **kwargs)``.

    Args:
        cfg (dict | BasePartitioner): The config (a recipe with ``params``
            is accepted too) or an already built partitioner.
        key (str): The config key of ``cfg``, named in errors. Defaults to
            ``'partition'``.

    Returns:
        BasePartitioner: The partitioner.

    Raises:
        ValueError: If ``cfg`` is not a dict, or builds no partitioner.
        UnregisteredTypeError: If ``cfg['type']`` is not registered (a
            ValueError and a KeyError naming ``key`` and the registered
            partitioners).
    """
    if isinstance(cfg, BasePartitioner):
        return cfg
    if not isinstance(cfg, dict):
        raise ValueError(f'{key} must be a dict such as '
                         "dict(type='Dirichlet', num_clients=10, alpha=0.1), "
                         f'got {type(cfg).__name__}')
    cfg = copy.deepcopy(dict(cfg))
    if 'params' in cfg and isinstance(cfg['params'], dict):
        cfg = recipe_to_cfg(cfg)
    name = cfg.get('type')
    if not isinstance(name, (str, type)):
        raise ValueError(f'{key}.type must be a registered partitioner name, '
                         f'got {name!r}')
    partitioner = build_checked(PARTITIONERS, cfg, key)
    if not isinstance(partitioner, BasePartitioner):
        raise ValueError(f'{key}.type {name!r} built a '
                         f'{type(partitioner).__name__}, not a partitioner')
    return partitioner


def build_partition(cfg: Union[dict, BasePartitioner],
                    labels: np.ndarray,
                    features: Optional[np.ndarray] = None,
                    key: str = 'partition') -> Partition:
    """Build the partitioner described by ``cfg`` and split ``labels``.

    Args:
        cfg (dict | BasePartitioner): e.g.
            ``dict(type='Dirichlet', num_clients=10, alpha=0.1, seed=0)``.
        labels (np.ndarray): One key per sample.
        features (np.ndarray, optional): ``(N, D)`` features for
            feature-based partitioners. Defaults to None.
        key (str): The config key of ``cfg``, named in errors. Defaults to
            ``'partition'``.

    Returns:
        Partition: The partition.
    """
    return build_partitioner(cfg, key)(labels, features)
