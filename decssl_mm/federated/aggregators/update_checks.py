"""Admission checks of client updates and the key-kind rules of aggregators.

A client's update enters an aggregator whole or not at all: every check
here runs before any running sum, buffer or counter is touched.
"""
import math
import re
from typing import Dict, Iterable, List, Sequence

import torch

from .update_casts import cast_to_global


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
        dict[str, Tensor]: The checked tensors of ``keys`` (detached where
        grad mode is on; under ``torch.no_grad()`` a parameter is returned
        as it is).

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
    detach = torch.is_grad_enabled()  # under no_grad nothing records
    for k in keys:  # shapes and kinds; finiteness below, in one pass
        value, ref = state[k], references[k]
        if torch.is_tensor(value) and value.dtype == ref.dtype and \
                value.shape == ref.shape:  # the usual case, passes at once
            out[k] = value.detach() if detach and value.requires_grad \
                else value
        else:  # judged in the dtype it is folded into: cast, then check
            out[k] = cast_to_global(
                check_tensor(client_id, k, value, ref, False), ref)
    if check_finite:
        floats = [out[k] for k in keys if out[k].is_floating_point()]
        if not all_finite(floats):
            reject_non_finite(client_id, out, references)
    return out


def reject_non_finite(client_id: int, update: Dict[str, torch.Tensor],
                      references: Dict[str, torch.Tensor]) -> None:
    """Name the first key of ``update`` holding NaN/Inf (once a fused check
    has found one).

    Args:
        client_id (int): The client (for the message).
        update (dict[str, Tensor]): Checked tensors, in key order.
        references (dict[str, Tensor]): Global tensors of the same keys.

    Raises:
        ClientUpdateRejected: Naming the first non-finite key (or, should
            every tensor be finite, the update as a whole).
    """
    for k, v in update.items():
        if v.is_floating_point():
            check_tensor(client_id, k, v, references[k], True)
    raise ClientUpdateRejected(
        f'client {client_id}: its update holds non-finite values')


def all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every element of every (floating) tensor is finite, exactly.

    Per device and dtype, one fused norm (``torch._foreach_norm``: NaN and
    Inf propagate into a norm) and one host synchronisation; only where a
    norm is not finite (a bad element, or huge finite values whose squares
    overflow) or the dtype is not float32/float64 does ``torch.isfinite``
    decide, tensor by tensor.

    Args:
        tensors (Sequence[Tensor]): Floating tensors, any devices.

    Returns:
        bool: True when no element is NaN or Inf.
    """
    groups: Dict[tuple, List[torch.Tensor]] = {}
    for t in tensors:
        if t.numel() > 0:
            groups.setdefault((t.device, t.dtype), []).append(t)
    for (_, dtype), group in groups.items():
        if dtype in (torch.float32, torch.float64) and bool(
                torch.stack(torch._foreach_norm(group)).isfinite().all()):
            continue
        if not all(bool(torch.isfinite(t).all()) for t in group):
            return False
    return True
