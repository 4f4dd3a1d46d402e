"""Overflow-free arithmetic on the integer tensors of client updates.

Integer buffers (``num_batches_tracked``) are combined in ``int64``; a
client may send any value, up to ``2**63 - 1``. These helpers never wrap
around: the midpoint of two values is computed without their sum, a value
is saturated to the range of the dtype it is stored in, and the result of
a round is never below the global model's value.
"""
import torch

__all__ = ['floor_midpoint', 'saturate_to', 'int_result_like']


def floor_midpoint(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``floor((low + high) / 2)`` elementwise, without computing the sum.

    Args:
        low (Tensor): Integer tensor.
        high (Tensor): Integer tensor of the same shape and dtype.

    Returns:
        Tensor: The rounded-down midpoints, in the dtype of the inputs.
    """
    return (low >> 1) + (high >> 1) + (low & high & 1)


def saturate_to(value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integer ``value`` cast to ``dtype``, clamped to its range first.

    Args:
        value (Tensor): Integer tensor (any integer dtype).
        dtype (torch.dtype): Integer dtype to cast to.

    Returns:
        Tensor: ``value`` in ``dtype``; out-of-range elements take the
        nearest representable value instead of wrapping around.
    """
    if value.dtype == dtype:
        return value
    wide = value.to(torch.int64)
    info = torch.iinfo(dtype)
    low = max(info.min, torch.iinfo(torch.int64).min)
    high = min(info.max, torch.iinfo(torch.int64).max)
    return wide.clamp(low, high).to(dtype)


def int_result_like(value: torch.Tensor,
                    global_value: torch.Tensor) -> torch.Tensor:
    """A round's integer result, stored like the global tensor.

    Saturated to the global tensor's dtype, on its device, and never below
    its value (a counter such as ``num_batches_tracked`` does not go back).

    Args:
        value (Tensor): The aggregated integer tensor (any integer dtype).
        global_value (Tensor): The global model's tensor of the same key.

    Returns:
        Tensor: The new global value, dtype and device of ``global_value``.
    """
    value = saturate_to(value.to(global_value.device), global_value.dtype)
    return torch.maximum(value.view(global_value.shape), global_value)
