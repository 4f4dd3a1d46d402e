"""Mixed-precision optimizer wrapper for any device, the CPU included."""
from contextlib import contextmanager
from typing import Iterator, Optional, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from decssl_mm.registry import OPTIM_WRAPPERS

_DTYPES = {
    'bfloat16': torch.bfloat16,
    'bf16': torch.bfloat16,
    'float16': torch.float16,
    'fp16': torch.float16,
}


def resolve_autocast_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """The autocast dtype named by ``optim_wrapper.dtype``.

    Args:
        dtype (str | torch.dtype): ``'bfloat16'`` (``'bf16'``) or
            ``'float16'`` (``'fp16'``), or the torch dtype itself.

    Returns:
        torch.dtype: ``torch.bfloat16`` or ``torch.float16``.

    Raises:
        ValueError: any other value, naming ``optim_wrapper.dtype``.
    """
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.bfloat16, torch.float16):
            return dtype
    elif isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise ValueError('`optim_wrapper.dtype` must be one of '
                     f"{sorted(_DTYPES)}, got {dtype!r}.")


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Run the forward pass under ``torch.autocast`` on the model's device.

    mmengine's ``AmpOptimWrapper`` refuses a machine without an accelerator.
    On a CPU with bf16 instructions (``avx512_bf16``, AMX) autocast in
    bfloat16 roughly halves the time of a convolutional training step
    (docs/results.md, "Speed of a study run"). Weights, gradients, optimizer
    state and everything the federated round exchanges stay float32: only
    the operations autocast lists (convolutions, matrix products) run in
    bf16, as on a GPU. bfloat16 has float32's exponent range, so no loss
    scaling is needed; ``float16`` is accepted on a GPU only, where mmengine's
    ``AmpOptimWrapper`` (with its loss scaler) is the better choice.

    Use it from a config::

        optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16',
                             optimizer=dict(type='SGD', lr=0.06))

    Args:
        dtype (str | torch.dtype): Autocast dtype, ``'bfloat16'``
            (default) or ``'float16'`` (GPU only).
        device_type (str, optional): ``'cpu'``, ``'cuda'``, ... Defaults to
            the device of the model's first parameter at each step.
        **kwargs: Passed to ``mmengine.optim.OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = resolve_autocast_dtype(dtype)
        self.device_type = device_type

    def _device_type(self, model: nn.Module) -> str:
        if self.device_type is not None:
            return self.device_type
        param = next(model.parameters(), None)
        return 'cpu' if param is None else param.device.type

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient accumulation context of the parent, under autocast."""
        device_type = self._device_type(model)
        if device_type == 'cpu' and self.cast_dtype == torch.float16:
            raise ValueError(
                "`optim_wrapper.dtype='float16'` needs a GPU; use "
                "'bfloat16' on the CPU.")
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=self.cast_dtype):
            yield
