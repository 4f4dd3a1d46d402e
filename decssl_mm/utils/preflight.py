"""Pre-flight checks of component types, before anything is built.

mmengine reports an unknown ``type`` only when it builds the component (the
model is built before the data, the loop after both), with a message that
does not say what *is* registered. :func:`check_registered_types` looks
every ``type`` of a federated config up first and names the key, the
registered alternatives and the closest match.
"""
import difflib
from typing import Any, Dict, List, Optional

from mmengine.config import Config, ConfigDict

from .config_check import _LOADERS, iter_dataset_cfgs



def registered_names(registry, base: Optional[type] = None) -> List[str]:
    """Names visible from ``registry`` (its own and its parents').

    Args:
        registry (Registry): The registry.
        base (type, optional): Only classes derived from it.

    Returns:
        list[str]: Sorted names.
    """
    names: Dict[str, Any] = {}
    reg = registry
    while reg is not None:
        for name, obj in reg.module_dict.items():
            names.setdefault(name, obj)
        reg = reg.parent
    return sorted(n for n, obj in names.items()
                  if base is None or (isinstance(obj, type)
                                      and issubclass(obj, base)))


def check_type(registry, cfg: Any, key: str,
               base: Optional[type] = None) -> None:
    """Raise a KeyError naming ``key`` if ``cfg['type']`` is unknown.

    Args:
        registry (Registry): Where the type must be registered.
        cfg: A component config (anything but a dict with a string
            ``type`` is not checked).
        key (str): The config key of ``cfg``, for the message.
        base (type, optional): Restrict the listed names to subclasses of
            ``base`` (e.g. models: only complete algorithms).

    Raises:
        KeyError: Naming the key, the registered names and close matches.
    """
    if not isinstance(cfg, (dict, ConfigDict)):
        return
    name = cfg.get('type')
    if not isinstance(name, str) or registry.get(name) is not None:
        return
    names = registered_names(registry, base)
    close = difflib.get_close_matches(name.split('.')[-1], names, n=3)
    hint = f' Did you mean {close}?' if close else ''
    raise KeyError(f'{key}.type {name!r} is not registered in the '
                   f'{registry.name!r} registry.{hint} Registered: {names}')


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
                          ('client_state', reg.CLIENT_STATE_STORES)):
        check_type(registry, tcfg.get(key), f'train_cfg.{key}')
    for loader in _LOADERS:
        lcfg = cfg.get(loader) or {}
        for path, ds in iter_dataset_cfgs(lcfg.get('dataset'),
                                          f'{loader}.dataset'):
            check_type(reg.DATASETS, ds, path)
            check_type(reg.PARTITIONERS, ds.get('partition'),
                       f'{path}.partition')
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        check_type(reg.HOOKS, hook, f'custom_hooks[{i}]')
