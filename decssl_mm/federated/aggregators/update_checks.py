"""Admission checks of client updates and the key-kind rules of aggregators.

A client's update enters an aggregator whole or not at all: every check
here runs before any running sum, buffer or counter is touched.
"""
import math
import re
from typing import Dict, Iterable, List, Sequence

import torch


#: Keys that are BatchNorm running statistics (averaged, never stepped).
BN_STAT_PATTERN = r'(^|\.)running_(mean|var)$'
#: Keys treated as buffers when the model's parameter names are unknown.
BUFFER_NAME_PATTERN = r'(^|\.)(running_mean|running_var|num_batches_tracked)$'


class ClientUpdateRejected(RuntimeError):
    """Raised when a client's update cannot enter the aggregate."""


def is_bn_stat_key(key: str) -> bool:
    """Whether ``key`` is a BatchNorm running mean or variance."""
    return re.search(BN_STAT_PATTERN, key) is not None


def is_buffer_name(key: str) -> bool:
    """Whether ``key`` is a buffer by name (BatchNorm statistics)."""
    return re.search(BUFFER_NAME_PATTERN, key) is not None


def check_weight(client_id: int, num_samples: float) -> None:
    """Refuse a sample count that is negative or not finite.

    Args:
        client_id (int): The client (for the message).
        num_samples (float): The client's reported sample count.

    Raises:
        ClientUpdateRejected: If the count cannot weigh an average.
    """
    n = float(num_samples)
    if not math.isfinite(n) or n < 0:
        raise ClientUpdateRejected(
            f'client {client_id}: invalid sample count {num_samples!r}')


def check_tensor(client_id: int, key: str, value: object,
                 reference: torch.Tensor, check_finite: bool) -> torch.Tensor:
    """Check one tensor of a client update against the global one.

    Args:
        client_id (int): The client (for the message).
        key (str): State-dict key (for the message).
        value: What the client sent for ``key``.
        reference (Tensor): The global tensor of ``key``.
        check_finite (bool): Whether NaN/Inf (any element) is refused.

    Returns:
        Tensor: ``value`` detached.

    Raises:
        ClientUpdateRejected: If ``value`` is no tensor, its shape differs
            from the global one, its dtype kind differs (floating vs.
            integer) or, with ``check_finite``, an element is NaN/Inf.
    """
    if not torch.is_tensor(value):
        raise ClientUpdateRejected(
            f'client {client_id}: {key!r} is a {type(value).__name__}, not '
            'a tensor')
    if value.shape != reference.shape:
        raise ClientUpdateRejected(
            f'client {client_id}: {key!r} has shape {tuple(value.shape)}, '
            f'the global model {tuple(reference.shape)}')
    if value.is_floating_point() != reference.is_floating_point() or \
            value.is_complex() != reference.is_complex():
        raise ClientUpdateRejected(
            f'client {client_id}: {key!r} has dtype {value.dtype}, the '
            f'global model {reference.dtype}')
    value = value.detach()
    if check_finite and value.is_floating_point() and \
            not bool(torch.isfinite(value).all()):
        raise ClientUpdateRejected(
            f'client {client_id}: {key!r} holds non-finite values')
    return value


def check_update(client_id: int, state: Dict[str, torch.Tensor],
                 references: Dict[str, torch.Tensor], keys: Iterable[str],
                 check_finite: bool) -> Dict[str, torch.Tensor]:
    """Check every tensor of a client update an aggregator reads.

    Args:
        client_id (int): The client (for messages).
        state (dict[str, Tensor]): The client's model state.
        references (dict[str, Tensor]): Global tensors of ``keys``.
        keys (Iterable[str]): Keys read from ``state``.
        check_finite (bool): Whether NaN/Inf are refused.

    Returns:
        dict[str, Tensor]: The checked, detached tensors of ``keys``.

    Raises:
        ClientUpdateRejected: Naming the client and the first bad key.
    """
    out: Dict[str, torch.Tensor] = {}
    keys = list(keys)
    missing: List[str] = [k for k in keys if k not in state]
    if missing:
        raise ClientUpdateRejected(
            f'client {client_id}: key {missing[0]!r} missing from its update'
            + (f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''))
    for k in keys:  # shapes and kinds; finiteness below, in one pass
        value, ref = state[k], references[k]
        if torch.is_tensor(value) and value.dtype == ref.dtype and \
                value.shape == ref.shape:  # the usual case, passes at once
            out[k] = value.detach() if value.requires_grad else value
        else:
            out[k] = check_tensor(client_id, k, value, ref, False)
    if check_finite:
        floats = [k for k in keys if out[k].is_floating_point()]
        if not all_finite([out[k] for k in floats]):
            for k in floats:  # the rare failure names the first bad key
                check_tensor(client_id, k, out[k], references[k], True)
    return out


def all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every element of every (floating) tensor is finite.

    Per device, one fused ``torch._foreach_norm`` over the float32/float64
    tensors (NaN and Inf propagate into a norm, so a finite norm means a
    finite tensor) and one host synchronisation. A norm can also be Inf by
    overflow of finite values (float32 elements above ~1e19); only then,
    and for the other floating dtypes (a float16/bfloat16 norm overflows
    easily), one ``aminmax`` per tensor decides exactly (nothing can
    overflow in it, no temporary the size of the tensor). A GPU is not
    stalled once per tensor.

    Args:
        tensors (Sequence[Tensor]): Floating tensors, any devices.

    Returns:
        bool: True when no element is NaN or Inf.
    """
    by_device: Dict[torch.device, List[torch.Tensor]] = {}
    for t in tensors:
        if t.numel() > 0:
            by_device.setdefault(t.device, []).append(t)
    for group in by_device.values():
        wide = [t for t in group if t.dtype in _NORM_DTYPES]
        exact = [t for t in group if t.dtype not in _NORM_DTYPES]
        if wide and not _norms_finite(wide):
            exact += wide  # a bad element or an overflow: decide exactly
        if exact and not _extremes_finite(exact):
            return False
    return True


#: Dtypes whose 2-norm is checked first (an overflow there needs elements
#: far beyond any trained weight).
_NORM_DTYPES = (torch.float32, torch.float64)


def _norms_finite(tensors: List[torch.Tensor]) -> bool:
    """Whether the 2-norm of every tensor (one device) is finite."""
    if hasattr(torch, '_foreach_norm'):
        norms = torch._foreach_norm(tensors)
    else:  # older torch: one reduction per tensor
        norms = [torch.linalg.vector_norm(t) for t in tensors]
    return bool(torch.stack(norms).isfinite().all())


def _extremes_finite(tensors: List[torch.Tensor]) -> bool:
    """Whether every element is finite, exactly (one device)."""
    extremes = [m for t in tensors for m in torch.aminmax(t)]
    return bool(torch.stack(extremes).isfinite().all())
