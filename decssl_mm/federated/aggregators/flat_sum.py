"""A weighted float64 running sum of models, held in flat buffers.

Folding a client model into per-tensor sums costs one kernel per tensor
(a ResNet-18 has ~120 floating tensors) for every check and every sum;
with many small clients that bookkeeping, not the arithmetic, is the cost.
Here a client model is packed into a flat buffer (one fused copy), checked
for finiteness (one reduction) and folded into the float64 sum: a few
kernels a client whatever the number of tensors.

On the CPU two more costs show at full model size: a fresh tensor of tens
of MB is new memory from the system every time (page faults: ~80 ms to
flatten a 20 M-value model into a new tensor, ~20 ms into a kept one), and
a plain ``add_`` of a float32 tensor to a float64 one is slow (~180 ms for
23 M values, ~35 ms cast through a float64 buffer of 2 MB). So the packing
buffer is kept between clients, the cast goes through a small kept
buffer, and a large model (where one kernel per tensor costs nothing next
to the data) is not packed at all: checked by one fused norm and added
tensor by tensor.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from decssl_mm.utils.state_dict import StateDict, copy_tensors

#: Values of one device and dtype up to which tensors are packed into one
#: (a fused copy, one sum); above it one fused norm reads them in place.
PACK_NUMEL = 2**22


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
    references' devices, so a model on a GPU is summed on the GPU. A buffer
    of at most ``pack_numel`` values is fed by packing the client's tensors
    into a kept buffer (one fused copy), checked by one sum; a larger one
    (where per-tensor kernels cost nothing next to the data) is checked by
    one fused norm and added tensor by tensor, without a packed copy.
    Either way nothing is added before the whole update is checked.
    Extra memory: the packing buffer (at most ``pack_numel`` values in the
    model's dtype) and ``cast_numel`` float64 values per buffer.

    Args:
        keys (Sequence[str]): Keys summed, in order.
        references (dict[str, Tensor]): Tensors giving each key's shape,
            dtype and device (e.g. the round's global model).
        pack_numel (int): Largest buffer that is packed. Defaults to
            :data:`PACK_NUMEL`.
        cast_numel (int): Values cast to float64 at once. Defaults to
            ``2**18``.
    """

    def __init__(self, keys: Sequence[str] = (),
                 references: Optional[StateDict] = None,
                 pack_numel: int = PACK_NUMEL,
                 cast_numel: int = 2**18) -> None:
        self.pack_numel = int(pack_numel)
        self.cast_numel = int(cast_numel)
        self._groups: List[_Group] = []
        self.reset(keys, references or {})

    def reset(self, keys: Sequence[str], references: StateDict) -> None:
        """Start an empty sum over ``keys`` laid out like ``references``.

        Packing buffers of an unchanged layout are kept.
        """
        self.keys = list(keys)
        by_kind: Dict[Tuple[torch.device, torch.dtype], List[str]] = {}
        for k in self.keys:
            ref = references[k]
            by_kind.setdefault((ref.device, ref.dtype), []).append(k)
        old = {g.signature: g for g in self._groups}
        self._groups = []
        for (device, dtype), group in by_kind.items():
            shapes = [references[k].shape for k in group]
            g = _Group(device, dtype, group, shapes, self.pack_numel)
            self._groups.append(old.get(g.signature, g))
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
                references; another device or floating dtype is converted).
            weight (float): The weight.
            check_finite (bool): Check every value first; a non-finite
                update is not added at all. Defaults to True.

        Returns:
            bool: False when the update holds NaN/Inf (nothing was added).
        """
        parts = []
        for g in self._groups:
            srcs = g.sources(values)
            piece = g.pack(srcs) if g.packed else None
            if check_finite and not (
                    flat_all_finite(piece) if piece is not None else
                    tensors_all_finite(srcs)):
                return False
            parts.append((srcs, piece))
        if self._sums is None:
            self._sums = [
                torch.zeros(g.numel, dtype=torch.float64, device=g.device)
                for g in self._groups
            ]
        for g, total, (srcs, piece) in zip(self._groups, self._sums, parts):
            if piece is not None:
                self._add_cast(total, piece, weight, g)
                continue
            for t, (o, shape) in zip(srcs, g.offsets):
                self._add_cast(total[o:o + shape.numel()], t.reshape(-1),
                               weight, g)
        return True

    def _add_cast(self, dst: torch.Tensor, piece: torch.Tensor,
                  weight: float, group: '_Group') -> None:
        """``dst += weight * piece`` in float64, casting through a small
        kept buffer."""
        if piece.dtype == torch.float64:
            dst.add_(piece, alpha=weight)
            return
        n = piece.numel()
        buf = group.cast_buffer(min(self.cast_numel, n))
        step = buf.numel()
        for a in range(0, n, step):
            b = min(a + step, n)
            part = buf[:b - a]
            part.copy_(piece[a:b])
            dst[a:b].add_(part, alpha=weight)

    def as_dict(self) -> StateDict:
        """The sum per key, in the order of ``keys`` (float64 views of the
        buffers); empty when nothing was added."""
        if self._sums is None:
            return {}
        views = {}
        for g, total in zip(self._groups, self._sums):
            for k, (o, shape) in zip(g.keys, g.offsets):
                views[k] = total[o:o + shape.numel()].view(shape)
        return {k: views[k] for k in self.keys}


class _Group:
    """The keys of one device and dtype: offsets and kept buffers."""

    def __init__(self, device: torch.device, dtype: torch.dtype,
                 keys: List[str], shapes: List[torch.Size],
                 pack_numel: int) -> None:
        self.device = device
        self.dtype = dtype
        self.keys = keys
        self.offsets: List[Tuple[int, torch.Size]] = []
        offset = 0
        for shape in shapes:
            self.offsets.append((offset, shape))
            offset += shape.numel()
        self.numel = offset
        self.packed = offset <= pack_numel
        self.signature = (device, dtype, tuple(keys),
                          tuple(tuple(s) for s in shapes), self.packed)
        self._pack_views: Optional[List[torch.Tensor]] = None
        self._pack_buf: Optional[torch.Tensor] = None
        self._cast_buf: Optional[torch.Tensor] = None

    def sources(self, values: StateDict) -> List[torch.Tensor]:
        """The group's tensors of ``values``, on the group's device."""
        srcs = [values[k] for k in self.keys]
        if any(t.device != self.device for t in srcs):
            srcs = [t.to(self.device) for t in srcs]
        return srcs

    def pack(self, srcs: List[torch.Tensor]) -> torch.Tensor:
        """``srcs`` as one flat tensor of the group's dtype (kept buffer;
        a single tensor of the group's dtype is read in place)."""
        if len(srcs) == 1 and srcs[0].dtype == self.dtype:
            return srcs[0].reshape(-1)
        if self._pack_views is None:
            self._pack_buf = torch.empty(self.numel, dtype=self.dtype,
                                         device=self.device)
            self._pack_views = [
                self._pack_buf[o:o + shape.numel()].view(shape)
                for o, shape in self.offsets
            ]
        copy_tensors(self._pack_views, srcs)
        return self._pack_buf

    def cast_buffer(self, n: int) -> torch.Tensor:
        """A kept float64 buffer of at least ``n`` values."""
        if self._cast_buf is None or self._cast_buf.numel() < n:
            self._cast_buf = torch.empty(n, dtype=torch.float64,
                                         device=self.device)
        return self._cast_buf


def tensors_all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every element of ``tensors`` (one device) is finite.

    One fused ``torch._foreach_norm`` where torch has it (NaN and Inf
    propagate into a norm); only when a norm is not finite (a bad element,
    or an overflow of huge finite values) or the dtype is not float32/64
    does one ``aminmax`` per tensor decide exactly.

    Args:
        tensors (Sequence[Tensor]): Floating tensors on one device.

    Returns:
        bool: True when no element is NaN or Inf.
    """
    ts = [t for t in tensors if t.numel() > 0]
    if not ts:
        return True
    if all(t.dtype in (torch.float32, torch.float64) for t in ts):
        norms = torch._foreach_norm(ts) if hasattr(
            torch, '_foreach_norm') else [t.norm() for t in ts]
        if bool(torch.stack(norms).isfinite().all()):
            return True
    return all(flat_all_finite(t.reshape(-1)) for t in ts)


def group_all_finite(tensors: Sequence[torch.Tensor],
                     pack_numel: int = PACK_NUMEL) -> bool:
    """Whether every element of ``tensors`` (one device and dtype) is
    finite: flattened and summed once when they hold at most ``pack_numel``
    values (:func:`flat_all_finite`), one fused norm otherwise
    (:func:`tensors_all_finite`; no model-sized copy)."""
    if sum(t.numel() for t in tensors) <= pack_numel:
        return flat_all_finite(flatten_tensors(tensors))
    return tensors_all_finite(tensors)
