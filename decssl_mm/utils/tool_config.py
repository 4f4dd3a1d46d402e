"""Config loading and model building shared by the analysis tools."""
from typing import Optional

from mmengine.config import Config

from decssl_mm.evaluation.model_cfg import model_cfg_like_runner

__all__ = ['load_tool_config', 'model_cfg_like_runner']


def load_tool_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config for a tool, apply ``--cfg-options``, set the scope.

    Args:
        path (str): The config file.
        cfg_options (dict, optional): Overrides (``DictAction`` output).

    Returns:
        Config: The merged config; its ``default_scope`` (``decssl_mm`` when
        unset) is made the default registry scope.
    """
    import decssl_mm  # noqa: F401  (compat fixes + registration)
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'decssl_mm'))
    return cfg
