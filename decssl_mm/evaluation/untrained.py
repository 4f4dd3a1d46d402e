"""Untrained references: the evaluated network before any training.

Every evaluated figure is reported beside the same network, evaluated by
the same protocol on the same data, untrained in two forms:

- ``untrained_init``: the model's own initialisation, where training
  starts: the model is built from the config right after seeding with the
  run's seed and ``init_weights()`` is called (the ``init_cfg`` of every
  module: e.g. Kaiming convolutions, constant BatchNorm);
- ``untrained_default``: PyTorch's default initialisation, random features:
  the same architecture built with the same seed, without ``init_weights()``
  (every layer as its constructor's ``reset_parameters`` left it).

A trained figure close to these says that training added little. Both are
built under a private random state: the caller's random streams (torch,
numpy, ``random``) are unchanged afterwards, so computing a reference during
training does not change the training.
"""
import contextlib
import random
from typing import Any, Callable, Dict, Iterator

import numpy as np
import torch
import torch.nn as nn

__all__ = ['UNTRAINED_INITS', 'build_untrained_model', 'untrained_metrics',
           'reference_key', 'isolated_seed']

# reference name (metric key suffix) -> initialisation
UNTRAINED_INITS = {'untrained_init': 'model', 'untrained_default': 'default'}


@contextlib.contextmanager
def isolated_seed(seed: int) -> Iterator[None]:
    """Seed torch, numpy and ``random`` inside; restore their state after.

    Args:
        seed (int): The seed.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) \
        if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def build_untrained_model(cfg: Any,
                          init: str = 'model',
                          seed: int = 0,
                          device: str = 'cpu') -> nn.Module:
    """The config's evaluated model, untrained.

    Args:
        cfg (Config | dict): The whole config (the model is built as by
            :func:`decssl_mm.evaluation.model_loading.eval_model_cfg`).
        init (str): ``'model'``: call ``init_weights()`` (the model's own
            initialisation); ``'default'``: do not (PyTorch's default
            initialisation of every layer). Defaults to ``'model'``.
        seed (int): Seed of the initialisation. Defaults to 0.
        device (str): Where to put the model. Defaults to ``'cpu'``.

    Returns:
        nn.Module: The model.

    Raises:
        ValueError: On another ``init``.
    """
    from decssl_mm.registry import MODELS
    from .model_loading import eval_model_cfg
    if init not in ('model', 'default'):
        raise ValueError(f"init must be 'model' or 'default', got {init!r}")
    model_cfg = eval_model_cfg(cfg)
    with isolated_seed(int(seed)):
        model = MODELS.build(model_cfg)
        if init == 'model':
            model.init_weights()
    return model.to(device)


def untrained_metrics(cfg: Any,
                      evaluate: Callable[[nn.Module], Dict[str, float]],
                      seed: int = 0,
                      device: str = 'cpu') -> Dict[str, Dict[str, float]]:
    """Evaluate both untrained forms of the config's model.

    Args:
        cfg (Config | dict): The whole config.
        evaluate (Callable): Maps a model to its metrics (the protocol of
            the trained figure, on the same data).
        seed (int): Seed of both initialisations. Defaults to 0.
        device (str): Where the models run. Defaults to ``'cpu'``.

    Returns:
        dict: ``{'untrained_init': metrics, 'untrained_default': metrics}``.
    """
    out = {}
    for name, init in UNTRAINED_INITS.items():
        model = build_untrained_model(cfg, init, seed, device)
        out[name] = evaluate(model)
        del model
    return out


def reference_key(*parts: Any) -> str:
    """A cache key of a reference computation from its inputs (configs,
    seed, settings), stable across processes."""
    import hashlib
    import json

    def plain(obj: Any) -> Any:
        if hasattr(obj, 'to_dict'):
            obj = obj.to_dict()
        if isinstance(obj, dict):
            return {str(k): plain(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [plain(v) for v in obj]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        return repr(obj)

    text = json.dumps(plain(list(parts)), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def untrained_suffix(metrics: dict, key: str) -> str:
    """`` (untrained: A model init, B PyTorch default init)`` for ``key``
    when ``metrics`` holds both untrained references of it, else ``''``."""
    init = metrics.get(f'{key}_untrained_init')
    default = metrics.get(f'{key}_untrained_default')
    if init is None or default is None:
        return ''
    return (f' (untrained: {init:.2f} model init, {default:.2f} '
            'PyTorch default init)')
