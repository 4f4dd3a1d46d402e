"""Pre-flight checks of component types, before anything is built.

mmengine reports an unknown ``type`` only when it builds the component (the
model is built before the data, the loop after both), with a message that
does not say what *is* registered. :func:`check_registered_types` looks
every ``type`` of a federated config up first and names the key, the
registered alternatives and the closest match.
"""
from mmengine.config import Config

from .config_walk import DATALOADER_KEYS, iter_dataset_cfgs
from .registry_utils import check_type, registered_names  # noqa: F401


def check_registered_types(cfg: Config) -> None:
    """Check the ``type`` of every component a federated run builds.

    Only configs in the ``decssl_mm`` scope are checked (downstream mmdet /
    mmseg configs have their own registries).

    Args:
        cfg (Config): The full config.

    Raises:
        KeyError: Naming the offending key and the registered names.
    """
    if cfg.get('default_scope', 'decssl_mm') != 'decssl_mm':
        return
    import decssl_mm.registry as reg
    from mmengine.model import BaseModel
    check_type(reg.MODELS, cfg.get('model'), 'model', base=BaseModel)
    tcfg = cfg.get('train_cfg') or {}
    check_type(reg.LOOPS, tcfg, 'train_cfg')
    for key, registry in (('aggregator', reg.AGGREGATORS),
                          ('sampler', reg.CLIENT_SAMPLERS),
                          ('client_state', reg.CLIENT_STATE_STORES),
                          ('server', reg.SERVERS),
                          ('trainer', reg.CLIENT_TRAINERS)):
        check_type(registry, tcfg.get(key), f'train_cfg.{key}')
    for loader in DATALOADER_KEYS:
        lcfg = cfg.get(loader) or {}
        for path, ds in iter_dataset_cfgs(lcfg.get('dataset'),
                                          f'{loader}.dataset'):
            check_type(reg.DATASETS, ds, path)
            check_type(reg.PARTITIONERS, ds.get('partition'),
                       f'{path}.partition')
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        check_type(reg.HOOKS, hook, f'custom_hooks[{i}]')
