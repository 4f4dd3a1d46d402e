"""One place for "is this ``type`` registered?" and building by config key.

Every component a config names is looked up here first, so an unknown
``type`` is reported the same way everywhere: the config key, the registry,
the registered names and the closest matches.
"""
import copy
import difflib
from typing import Any, Dict, List, Optional

from mmengine.config import ConfigDict


class UnregisteredTypeError(KeyError, ValueError):
    """A config names a ``type`` that is not registered.

    A KeyError (a lookup that failed) and, for callers that validate configs
    with ``except ValueError``, a ValueError. The message names the config
    key, the registry, close matches and the registered names.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


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
        UnregisteredTypeError: Naming the key, the registered names and
            close matches (a KeyError and a ValueError).
    """
    if not isinstance(cfg, (dict, ConfigDict)):
        return
    name = cfg.get('type')
    if not isinstance(name, str) or registry.get(name) is not None:
        return
    names = registered_names(registry, base)
    close = difflib.get_close_matches(name.split('.')[-1], names, n=3)
    hint = f' Did you mean {close}?' if close else ''
    raise UnregisteredTypeError(
        f'{key}.type {name!r} is not registered in the {registry.name!r} '
        f'registry.{hint} Registered: {names}')


def build_checked(registry, cfg: Any, key: str,
                  default_type: Optional[str] = None, **default_args):
    """Build ``cfg`` from ``registry``, naming ``key`` if its type is unknown.

    Args:
        registry (Registry): The registry to build from.
        cfg (dict | object | None): A config dict, an already built object
            (returned as is) or None (``dict(type=default_type)``).
        key (str): The config key of ``cfg``, for error messages.
        default_type (str, optional): Type used when ``cfg`` has none.
        **default_args: Arguments set when ``cfg`` does not give them.

    Returns:
        The built object.
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, (dict, ConfigDict)):
        return cfg
    cfg = copy.deepcopy(dict(cfg))
    if default_type is not None:
        cfg.setdefault('type', default_type)
    if 'type' not in cfg:
        raise KeyError(f'{key}.type is required.')
    for k, v in default_args.items():
        cfg.setdefault(k, v)
    check_type(registry, cfg, key)
    return registry.build(cfg)
