"""A weighted float64 running sum of models, held in flat buffers.

Folding a client model into per-tensor sums costs one kernel per tensor
(a ResNet-18 has ~120 floating tensors) for every check and every sum;
with many small clients that bookkeeping, not the arithmetic, is the cost.
Here a client model is first flattened into one tensor per (device, dtype)
(one fused copy), then checked for finiteness (one reduction) and folded
into the float64 sum (one fused multiply-add): three kernels a client
whatever the number of tensors.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

StateDict = Dict[str, torch.Tensor]
_Layout = List[Tuple[str, int, torch.Size]]


def flatten_tensors(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One 1-D tensor holding ``tensors`` (one device) in order.

    One fused copy (``torch._C._nn.flatten_dense_tensors``) where torch has
    it, a concatenation otherwise; a single tensor is reshaped (no copy when
    it is contiguous). Elements follow each tensor's logical (row-major)
    order whatever its memory format.

    Args:
        tensors (Sequence[Tensor]): Tensors on one device (mixed floating
            dtypes are promoted).

    Returns:
        Tensor: The flat tensor.
    """
    if len(tensors) == 1:
        return tensors[0].reshape(-1)
    fused = getattr(torch._C._nn, 'flatten_dense_tensors', None)
    if fused is not None:
        try:
            return fused(list(tensors))
        except (RuntimeError, TypeError):
            pass
    return torch.cat([t.reshape(-1) for t in tensors])


def flat_all_finite(flat: torch.Tensor) -> bool:
    """Whether every element of a flat floating tensor is finite, exactly.

    One sum first (float32 accumulation, float64 for float64 tensors): NaN
    and Inf propagate into it, so a finite sum means finite elements. A sum
    can also be Inf by overflow of finite values (float32 elements summing
    beyond ~3e38); only then ``aminmax`` decides exactly.

    Args:
        flat (Tensor): A floating tensor.

    Returns:
        bool: True when no element is NaN or Inf.
    """
    if flat.numel() == 0:
        return True
    acc = torch.float64 if flat.dtype == torch.float64 else torch.float32
    if math.isfinite(flat.sum(dtype=acc).item()):
        return True
    lo, hi = torch.aminmax(flat)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


class FlatWeightedSum:
    """``sum[k] += weight * value[k]`` in float64, kept in flat buffers.

    The layout (which keys share a buffer: one per device and dtype of the
    reference tensors) is fixed by :meth:`reset`; the buffers live on the
    references' devices, so a model on a GPU is summed on the GPU.

    Args:
        keys (Sequence[str]): Keys summed, in order.
        references (dict[str, Tensor]): Tensors giving each key's shape,
            dtype and device (e.g. the round's global model).
    """

    def __init__(self, keys: Sequence[str] = (),
                 references: Optional[StateDict] = None) -> None:
        self.reset(keys, references or {})

    def reset(self, keys: Sequence[str], references: StateDict) -> None:
        """Start an empty sum over ``keys`` laid out like ``references``."""
        self.keys = list(keys)
        groups: Dict[Tuple[torch.device, torch.dtype], List[str]] = {}
        for k in keys:
            ref = references[k]
            groups.setdefault((ref.device, ref.dtype), []).append(k)
        self._groups: List[Tuple[torch.device, torch.dtype, _Layout]] = []
        for (device, dtype), group in groups.items():
            layout, offset = [], 0
            for k in group:
                shape = references[k].shape
                layout.append((k, offset, shape))
                offset += shape.numel()
            self._groups.append((device, dtype, layout))
        self._sums: Optional[List[torch.Tensor]] = None

    @property
    def empty(self) -> bool:
        """Whether nothing was added since :meth:`reset`."""
        return self._sums is None

    def flatten(self, values: StateDict) -> List[torch.Tensor]:
        """One flat tensor per buffer of the layout, from ``values``.

        A value on another device than its reference is moved there.

        Args:
            values (dict[str, Tensor]): Tensors of every key (shapes of
                the references).

        Returns:
            list[Tensor]: Flat tensors, one per buffer.
        """
        flats = []
        for device, _, layout in self._groups:
            ts = [values[k] for k, _, _ in layout]
            if any(t.device != device for t in ts):
                ts = [t.to(device) for t in ts]
            flats.append(flatten_tensors(ts))
        return flats

    def add(self, flats: Sequence[torch.Tensor], weight: float) -> None:
        """Fold flat tensors from :meth:`flatten` into the sum."""
        if self._sums is None:
            self._sums = [f.to(torch.float64, copy=True).mul_(weight)
                          for f in flats]
            return
        for s, f in zip(self._sums, flats):
            s.add_(f, alpha=weight)

    def as_dict(self) -> StateDict:
        """The sum per key, in the order of ``keys`` (float64 views of the
        buffers); empty when nothing was added."""
        if self._sums is None:
            return {}
        views = {
            k: s[o:o + shape.numel()].view(shape)
            for s, (_, _, layout) in zip(self._sums, self._groups)
            for k, o, shape in layout
        }
        return {k: views[k] for k in self.keys}
