"""The model config a model built outside the Runner needs."""
import copy
from typing import Any, Optional


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
