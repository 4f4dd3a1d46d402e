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
            ``'float16'`` (``'fp16'``), or the torch dtype itself
            (``'auto'`` is resolved per device by
            :class:`AutocastOptimWrapper`).

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

    Without those instructions PyTorch emulates bf16 and autocast makes a
    step several times SLOWER (an AVX2-only CPU ran the study's SimCLR
    round at 0.15x the float32 rate, docs/results.md): ``dtype='auto'``
    autocasts in bf16 only on a device that computes it natively
    (:func:`decssl_mm.utils.native_bf16.native_bf16`) and runs plain
    float32 elsewhere, logging the choice once.

    Use it from a config::

        optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16',
                             optimizer=dict(type='SGD', lr=0.06))

    Args:
        dtype (str | torch.dtype): Autocast dtype, ``'bfloat16'``
            (default), ``'float16'`` (GPU only) or ``'auto'`` (bf16 where
            native, else no autocast).
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
        self.auto = isinstance(dtype, str) and dtype.lower() == 'auto'
        self.cast_dtype = None if self.auto else resolve_autocast_dtype(dtype)
        self.device_type = device_type
        self._resolved: dict = {}

    def autocast_dtype(self, device_type: str) -> Optional[torch.dtype]:
        """The dtype autocast uses on ``device_type`` (None: float32, no
        autocast; only with ``dtype='auto'`` on a device without native
        bf16)."""
        if not self.auto:
            return self.cast_dtype
        if device_type not in self._resolved:
            from mmengine.logging import print_log

            from decssl_mm.utils.native_bf16 import native_bf16
            native = native_bf16(device_type)
            self._resolved[device_type] = torch.bfloat16 if native else None
            print_log(
                f"optim_wrapper.dtype='auto': {device_type} "
                + ('computes bf16 natively: autocast in bfloat16' if native
                   else 'has no native bf16: float32, no autocast'),
                logger='current')
        return self._resolved[device_type]

    def _device_type(self, model: nn.Module) -> str:
        if self.device_type is not None:
            return self.device_type
        param = next(model.parameters(), None)
        return 'cpu' if param is None else param.device.type

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient accumulation context of the parent, under autocast."""
        device_type = self._device_type(model)
        cast = self.autocast_dtype(device_type)
        if device_type == 'cpu' and cast == torch.float16:
            raise ValueError(
                "`optim_wrapper.dtype='float16'` needs a GPU; use "
                "'bfloat16' on the CPU.")
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=cast or torch.bfloat16,
                enabled=cast is not None):
            yield
