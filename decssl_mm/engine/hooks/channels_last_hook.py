"""Put the model's 4-d tensors in channels-last memory format, by config."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook

from decssl_mm.registry import HOOKS


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model to ``torch.channels_last`` before training.

    Convolutions on a GPU (cuDNN, tensor cores, bf16 in particular) run
    faster on NHWC tensors. The hook converts the model's parameters and
    buffers in place (the ``Parameter`` objects stay the same, so an
    optimizer already built keeps them) before anything reads them, and
    optionally each batch's images. Aggregation, the server's start-state
    copies and client-state files work on any memory format: copies keep
    the destination's layout, sums keep their first operand's.

    Use it from a config without code changes::

        custom_hooks = [dict(type='ChannelsLastHook')]

    It runs before the federated loop takes the global model from the
    working model, so the server's copies are channels-last as well.

    Args:
        inputs (bool): Also convert each training batch's 4-d image tensors
            in ``data_batch['inputs']`` after the data preprocessor has
            moved them (done in the model's ``data_preprocessor`` output
            through a forward pre-hook). Defaults to True.
        only_native_bf16 (bool): Convert only when the model's device
            computes bf16 natively (the study's ``study_precision='auto'``:
            channels-last goes with bf16 autocast). Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, inputs: bool = True,
                 only_native_bf16: bool = False) -> None:
        self.inputs = bool(inputs)
        self.only_native_bf16 = bool(only_native_bf16)
        self._handle: Optional[torch.utils.hooks.RemovableHandle] = None

    def before_train(self, runner) -> None:
        """Convert the model (and register the input conversion)."""
        model = unwrap(runner.model)
        if self.only_native_bf16:
            from decssl_mm.utils.native_bf16 import native_bf16
            param = next(model.parameters(), None)
            if not native_bf16('cpu' if param is None else
                               param.device.type):
                return
        to_channels_last(model)
        if self.inputs and self._handle is None:
            self._handle = model.register_forward_pre_hook(
                _inputs_channels_last, with_kwargs=True)

    def after_train(self, runner) -> None:
        """Stop converting inputs (the model stays channels-last)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a wrapper (``FederatedModelWrapper``, DDP)."""
    return getattr(model, 'module', model)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Convert every 4-d parameter and buffer of ``model`` in place.

    Args:
        model (nn.Module): The model.

    Returns:
        nn.Module: ``model``, converted.
    """
    return model.to(memory_format=torch.channels_last)


def _inputs_channels_last(module: nn.Module, args: tuple, kwargs: dict):
    """Forward pre-hook: 4-d ``inputs`` to channels-last."""
    x = kwargs.get('inputs')
    if x is None and args:
        x = args[0]
        converted = _convert(x)
        return (converted, ) + tuple(args[1:]), kwargs
    if x is not None:
        kwargs = dict(kwargs, inputs=_convert(x))
    return args, kwargs


def _convert(x):
    if torch.is_tensor(x) and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if isinstance(x, (list, tuple)):
        return type(x)(_convert(v) for v in x)
    return x
