"""Config loading and model building shared by the analysis tools."""
import copy
from typing import Any, Optional

from mmengine.config import Config


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


def model_cfg_like_runner(cfg: Any, model: Optional[dict] = None) -> dict:
    """A copy of a model config completed as mmengine's Runner does.

    The Runner gives the model the config's top-level ``data_preprocessor``
    when the model has none; a model built outside the Runner needs the same
    or it sees unnormalised images.

    Args:
        cfg (Config): The whole config.
        model (dict, optional): The model config to complete (default:
            ``cfg.model``), e.g. the inner algorithm of a wrapper model.

    Returns:
        dict: The completed copy.
    """
    out = copy.deepcopy(cfg.model if model is None else model)
    if cfg.get('data_preprocessor') is not None:
        out.setdefault('data_preprocessor', copy.deepcopy(
            cfg.data_preprocessor))
    return out
