"""The aggregation maths as plain functions over dicts of tensors.

Which keys are exchanged, weighted float64 sums, the maximum of integer
tensors, the weighted mean over ranks and the global step. The aggregator
components (:class:`~decssl_mm.federated.aggregators.BaseAggregator` and
its subclasses) compose them; nothing here holds state.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..dist_utils import all_reduce_tensors
from .update_checks import is_bn_stat_key, is_buffer_name

#: State-dict keys that stay on the client unless a config says otherwise:
#: the negative-key queues of MoCo/DenseCL/SwAV and their pointers are
#: client-local memories of the client's own data.
DEFAULT_LOCAL_PATTERNS = (r'(^|\.)queue\d*$', r'(^|\.)queue\d*_ptr$',
                          r'(^|\.)queue_ptr\d*$')


def select_exchanged_keys(
        state_keys: Sequence[str], include: Optional[Sequence[str]],
        exclude: Sequence[str], param_keys: Optional[Sequence[str]] = None
) -> Tuple[List[str], List[str], List[str]]:
    """The exchanged keys, the exchanged trainable parameters and the
    non-exchanged BatchNorm statistics (averaged for the export only).

    A key is exchanged when it matches (``re.search``) one of ``include``
    (every key when None) and none of ``exclude``.

    Args:
        state_keys (Sequence[str]): Keys of the model's state dict.
        include (Sequence[str], optional): Patterns of exchanged keys.
        exclude (Sequence[str]): Patterns of keys that stay local.
        param_keys (Sequence[str], optional): Names of the model's trainable
            parameters; None: every floating key not named like a buffer.

    Returns:
        tuple: ``(keys, param_keys, export_only_keys)`` in state-dict order.

    Raises:
        ValueError: If a pattern matches no key (a typo would silently
            change the algorithm), nothing is left to exchange, or a
            ``param_keys`` name is no key of the state dict.
    """
    state_keys = list(state_keys)
    for name, patterns in (('include', include or []), ('exclude', exclude)):
        for pat in patterns:
            if pat in DEFAULT_LOCAL_PATTERNS:
                continue
            if not any(re.search(pat, k) for k in state_keys):
                raise ValueError(
                    f'aggregator.{name} pattern {pat!r} matches no key of '
                    f'the model state dict (first keys: {state_keys[:5]}).')
    keys = [
        k for k in state_keys
        if (include is None or any(re.search(p, k) for p in include))
        and not any(re.search(p, k) for p in exclude)
    ]
    if not keys:
        raise ValueError('The aggregator include/exclude patterns leave '
                         'no key of the model to exchange.')
    exchanged = set(keys)
    export_only = [
        k for k in state_keys if k not in exchanged and is_bn_stat_key(k)
    ]
    return keys, select_param_keys(keys, state_keys, param_keys), export_only


def select_param_keys(keys: List[str], state_keys: List[str],
                      param_keys: Optional[Sequence[str]]) -> List[str]:
    """The exchanged keys that are trainable parameters."""
    if param_keys is None:
        return [k for k in keys if not is_buffer_name(k)]
    known = set(state_keys)
    unknown = [k for k in param_keys if k not in known]
    if unknown:
        raise ValueError(
            f'aggregator.select_keys: parameter name {unknown[0]!r} is '
            'not a key of the model state dict (param_keys must come '
            'from the named_parameters() of the model whose state dict '
            'is exchanged).')
    params = set(param_keys)
    return [k for k in keys if k in params]


def fold_max(maxima: Dict[str, torch.Tensor],
             values: Dict[str, torch.Tensor]) -> None:
    """``maxima[k] = max(maxima[k], values[k])`` in place (the first
    values are copied)."""
    if not maxima:
        maxima.update({k: t.clone() for k, t in values.items()})
        return
    keys = list(values)
    try:  # one fused call for every integer tensor
        torch._foreach_maximum_([maxima[k] for k in keys],
                                [values[k] for k in keys])
    except (AttributeError, RuntimeError, TypeError):
        for k in keys:
            maxima[k] = torch.maximum(maxima[k], values[k])


def reduce_weighted_sums(sums: Dict[str, torch.Tensor], total_weight: float
                         ) -> Tuple[Dict[str, torch.Tensor], float]:
    """All-reduce (sum) float64 sums and their total weight over ranks.

    Returns:
        tuple: ``(sums, total weight)`` of every rank.
    """
    sums = dict(sums)
    sums['__weight__'] = torch.tensor([total_weight], dtype=torch.float64)
    sums = all_reduce_tensors(sums, 'sum')
    total = float(sums.pop('__weight__').item())
    return sums, total


def weighted_mean_like(sums: Dict[str, torch.Tensor], total: float,
                       like: Dict[str, torch.Tensor]
                       ) -> Dict[str, torch.Tensor]:
    """``sums / total`` in the dtype and device of ``like`` (empty when
    ``total <= 0``: no client contributed)."""
    if total <= 0:
        return {}
    return {
        k: (v / total).to(like[k].device, like[k].dtype)
        for k, v in sums.items()
    }


def apply_step(global_state: Dict[str, torch.Tensor],
               step: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``global + step`` computed in float64, in the global dtype/device."""
    new = {}
    for k, d in step.items():
        g = global_state[k]
        new[k] = (g.double() + d.to(g.device)).to(g.dtype)
    return new


def fold_weighted(sums: Dict[str, torch.Tensor],
                  values: Dict[str, torch.Tensor], keys: Sequence[str],
                  weight: float) -> None:
    """``sums[k] += weight * values[k]`` in float64, in place.

    A key not yet in ``sums`` starts as ``weight * values[k]`` in float64
    on the value's device; keys already there are updated with one fused
    ``torch._foreach_add_`` (one call instead of one per tensor).

    Args:
        sums (dict[str, Tensor]): Running float64 sums, updated in place.
        values (dict[str, Tensor]): One client's tensors.
        keys (Sequence[str]): Keys to fold.
        weight (float): The client's weight.
    """
    fresh = {k for k in keys if k not in sums}
    for k in fresh:
        sums[k] = values[k].to(torch.float64, copy=True).mul_(weight)
    rest = [k for k in keys if k not in fresh]
    if rest:
        torch._foreach_add_([sums[k] for k in rest],
                            [values[k] for k in rest], alpha=weight)
