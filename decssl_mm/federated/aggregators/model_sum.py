"""A weighted float64 running sum of models, one tensor per key."""
from typing import List, Optional, Sequence

import torch

from decssl_mm.utils.state_dict import StateDict

from .update_checks import all_finite

__all__ = ['PerTensorSum']


class PerTensorSum:
    """``sum[k] += weight * float64(value[k])``, one float64 tensor per key.

    The sums live on the references' devices (a model on a GPU is summed
    on the GPU); memory is one float64 copy of the summed keys, whatever
    the number of clients folded.

    Args:
        keys (Sequence[str]): Keys summed, in order.
        references (dict[str, Tensor], optional): Tensors giving each key's
            shape and device (e.g. the round's global model).
    """

    def __init__(self, keys: Sequence[str] = (),
                 references: Optional[StateDict] = None) -> None:
        self.reset(keys, references or {})

    def reset(self, keys: Sequence[str], references: StateDict) -> None:
        """Start an empty sum over ``keys`` laid out like ``references``.

        Args:
            keys (Sequence[str]): Keys summed, in order.
            references (dict[str, Tensor]): Tensor of every key.
        """
        self.keys = list(keys)
        self._refs = [references[k] for k in self.keys]
        self._sums: Optional[List[torch.Tensor]] = None

    @property
    def empty(self) -> bool:
        """Whether nothing was added since :meth:`reset`."""
        return self._sums is None

    def fold(self, values: StateDict, weight: float,
             check_finite: bool = True) -> bool:
        """Add ``weight * values`` to the sum, unless an element is NaN/Inf.

        Args:
            values (dict[str, Tensor]): Tensors of every key (shapes of the
                references, already cast to their dtypes).
            weight (float): The weight.
            check_finite (bool): Check every value first; a non-finite
                update is not added at all. Defaults to True.

        Returns:
            bool: False when the update holds NaN/Inf (nothing was added).
        """
        srcs = [values[k].to(ref.device)
                for k, ref in zip(self.keys, self._refs)]
        if check_finite and not all_finite(srcs):
            return False
        if self._sums is None:
            self._sums = [torch.zeros_like(ref, dtype=torch.float64)
                          for ref in self._refs]
        for total, t in zip(self._sums, srcs):
            total.add_(t.to(torch.float64), alpha=weight)
        return True

    def as_dict(self) -> StateDict:
        """The sum per key, in the order of ``keys`` (float64); empty when
        nothing was added."""
        if self._sums is None:
            return {}
        return dict(zip(self.keys, self._sums))
