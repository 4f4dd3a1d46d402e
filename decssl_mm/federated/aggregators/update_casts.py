"""Bring a client's tensor to the dtype of the global tensor it updates.

An update is judged in the dtype it will be folded into: a floating
tensor of another floating dtype (e.g. ``float64`` for a ``float32`` key)
is cast to the global dtype first, so a value finite in ``float64`` but
out of range in ``float32`` becomes ``inf`` and is refused by the
finiteness check that follows. An integer tensor of another integer dtype
is saturated to the global dtype's range (never wrapped around).
"""
import torch

from .int_reduce import saturate_to

__all__ = ['cast_to_global']


def cast_to_global(value: torch.Tensor,
                   reference: torch.Tensor) -> torch.Tensor:
    """``value`` in the dtype of ``reference`` (same kind assumed).

    Args:
        value (Tensor): A client's tensor whose dtype kind (floating or
            integer) matches ``reference``'s.
        reference (Tensor): The global tensor of the same key.

    Returns:
        Tensor: ``value`` itself when the dtypes match, else a cast copy
        (saturating for integers).
    """
    if value.dtype == reference.dtype:
        return value
    if value.is_floating_point() or value.is_complex():
        return value.to(reference.dtype)
    return saturate_to(value, reference.dtype)
