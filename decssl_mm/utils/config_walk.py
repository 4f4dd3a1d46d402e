"""Walking the dataset configs of a training config.

Shared by the pre-flight checks (:mod:`decssl_mm.utils.preflight`,
:mod:`decssl_mm.utils.config_check`); depends on nothing else in decssl_mm.
"""
from typing import Any, Iterator, Tuple

from mmengine.config import ConfigDict

#: The config keys of the dataloaders a Runner builds.
DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def iter_dataset_cfgs(cfg: Any, path: str) -> Iterator[Tuple[str, dict]]:
    """Yield ``(config path, dataset dict)`` of nested dataset configs.

    Args:
        cfg: A dataset config; anything but a dict yields nothing.
        path (str): The config key of ``cfg``, e.g.
            ``'train_dataloader.dataset'``.

    Yields:
        tuple[str, dict]: The key of each (wrapped) dataset and its config,
        outermost first.
    """
    if not isinstance(cfg, (dict, ConfigDict)):
        return
    yield path, cfg
    for key in ('dataset', 'datasets'):
        sub = cfg.get(key)
        if isinstance(sub, (list, tuple)):
            for i, s in enumerate(sub):
                yield from iter_dataset_cfgs(s, f'{path}.{key}[{i}]')
        elif sub is not None:
            yield from iter_dataset_cfgs(sub, f'{path}.{key}')
