"""Whether a device computes bfloat16 natively (autocast pays off there)."""
import functools
from typing import FrozenSet

import torch

__all__ = ['cpu_flags', 'native_bf16', 'resolve_precision']

# CPU instructions that make bf16 convolutions and matrix products faster
# than float32 (AVX512-BF16, Intel AMX). Without them PyTorch emulates bf16
# through float32 and autocast makes a training step several times slower.
_BF16_FLAGS = ('avx512_bf16', 'amx_bf16')


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is no
    such file)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device_type: str = 'cpu') -> bool:
    """Whether ``device_type`` runs bf16 natively.

    Args:
        device_type (str): ``'cpu'`` (AVX512-BF16 or AMX in the CPU flags)
            or ``'cuda'`` (``torch.cuda.is_bf16_supported()``); any other
            device counts as native.

    Returns:
        bool: True when autocast in bf16 is expected to speed up training.
    """
    if device_type == 'cpu':
        return any(flag in cpu_flags() for flag in _BF16_FLAGS)
    if device_type == 'cuda':
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return True


def resolve_precision(precision: str, device_type: str = 'cpu') -> str:
    """``'bf16'`` or ``'fp32'`` for a precision setting on a device.

    Args:
        precision (str): ``'bf16'``, ``'fp32'`` or ``'auto'`` (bf16 where
            :func:`native_bf16`, else fp32).
        device_type (str): The training device. Defaults to ``'cpu'``.

    Returns:
        str: The precision the local steps run in.
    """
    if precision == 'auto':
        return 'bf16' if native_bf16(device_type) else 'fp32'
    return precision
