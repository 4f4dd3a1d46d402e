"""A weighted float64 running sum of models, held in flat buffers.

Folding a client model into per-tensor sums costs one kernel per tensor
(a ResNet-18 has ~120 floating tensors) for every check and every sum;
with many small clients that bookkeeping, not the arithmetic, is the cost.
Here a client model is packed into a flat buffer (one fused copy), checked
for finiteness (one reduction) and folded into the float64 sum: a few
kernels a client whatever the number of tensors.

On the CPU two more costs show at full model size: a fresh tensor of tens
of MB is new memory from the system every time (page faults: ~80 ms to
flatten a 23 M-value model into a new tensor, ~20 ms into a kept one), and
adding a float32 tensor to a float64 one casts element by element (~170 ms
for 23 M values, ~35 ms through a float64 buffer of a few MB). So the
buffers are kept between clients and large models are folded in chunks.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

StateDict = Dict[str, torch.Tensor]


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
    references' devices, so a model on a GPU is summed on the GPU. A
    buffer's keys are packed ``chunk_numel`` values at a time (a tensor
    larger than that is a chunk of its own, read in place) into a packing
    buffer that is kept between clients; a model within one chunk is
    packed once per client, a larger one twice (once to check it, once to
    add it: nothing is added before the whole update is checked). Extra
    memory: one chunk in the model's dtype and ``cast_numel`` float64
    values per buffer, whatever the model's size.

    Args:
        keys (Sequence[str]): Keys summed, in order.
        references (dict[str, Tensor]): Tensors giving each key's shape,
            dtype and device (e.g. the round's global model).
        chunk_numel (int): Values packed at once. Defaults to ``2**22``.
        cast_numel (int): Values cast to float64 at once. Defaults to
            ``2**18``.
    """

    def __init__(self, keys: Sequence[str] = (),
                 references: Optional[StateDict] = None,
                 chunk_numel: int = 2**22,
                 cast_numel: int = 2**18) -> None:
        self.chunk_numel = int(chunk_numel)
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
            g = _Group(device, dtype, group, shapes, self.chunk_numel)
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
        single = all(len(g.chunks) == 1 for g in self._groups)
        packed = None
        if check_finite:
            packed = [] if single else None
            for g in self._groups:
                for chunk in g.chunks:
                    piece = g.pack(chunk, values)
                    if not flat_all_finite(piece):
                        return False
                    if single:
                        packed.append(piece)
        if self._sums is None:
            self._sums = [
                torch.zeros(g.numel, dtype=torch.float64, device=g.device)
                for g in self._groups
            ]
        i = 0
        for g, total in zip(self._groups, self._sums):
            for chunk in g.chunks:
                piece = packed[i] if packed else g.pack(chunk, values)
                i += 1
                self._add_cast(total[chunk.start:chunk.stop], piece, weight,
                               g)
        return True

    def _add_cast(self, dst: torch.Tensor, piece: torch.Tensor,
                  weight: float, group: '_Group') -> None:
        """``dst += weight * piece`` in float64, casting through a small
        kept buffer (a mixed-dtype add casts element by element)."""
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


class _Chunk:
    """A run of a group's keys packed together: flat range and views."""

    def __init__(self, keys: List[str], start: int, stop: int) -> None:
        self.keys = keys
        self.start = start
        self.stop = stop
        self.views: Optional[List[torch.Tensor]] = None  # into the buffer


class _Group:
    """The keys of one device and dtype: offsets, chunks, kept buffers."""

    def __init__(self, device: torch.device, dtype: torch.dtype,
                 keys: List[str], shapes: List[torch.Size],
                 chunk_numel: int) -> None:
        self.device = device
        self.dtype = dtype
        self.keys = keys
        self.offsets: List[Tuple[int, torch.Size]] = []
        self.chunks: List[_Chunk] = []
        offset, run, run_start = 0, [], 0
        for k, shape in zip(keys, shapes):
            n = shape.numel()
            if run and offset + n - run_start > chunk_numel:
                self.chunks.append(_Chunk(run, run_start, offset))
                run, run_start = [], offset
            run.append(k)
            self.offsets.append((offset, shape))
            offset += n
        if run:
            self.chunks.append(_Chunk(run, run_start, offset))
        self.numel = offset
        self.shapes = dict(zip(keys, shapes))
        self.signature = (device, dtype, tuple(keys),
                          tuple(tuple(s) for s in shapes), chunk_numel)
        self._pack_buf: Optional[torch.Tensor] = None
        self._cast_buf: Optional[torch.Tensor] = None

    def pack(self, chunk: _Chunk, values: StateDict) -> torch.Tensor:
        """The chunk's values as one flat tensor of the group's dtype."""
        srcs = [values[k] for k in chunk.keys]
        if any(t.device != self.device for t in srcs):
            srcs = [t.to(self.device) for t in srcs]
        if len(srcs) == 1 and srcs[0].dtype == self.dtype:
            return srcs[0].reshape(-1)  # a large tensor: read in place
        if chunk.views is None:
            size = max(c.stop - c.start for c in self.chunks)
            if self._pack_buf is None or self._pack_buf.numel() < size:
                self._pack_buf = torch.empty(size, dtype=self.dtype,
                                             device=self.device)
            chunk.views = [
                self._pack_buf[o - chunk.start:o - chunk.start +
                               self.shapes[k].numel()].view(self.shapes[k])
                for k, (o, _) in zip(chunk.keys, self._chunk_offsets(chunk))
            ]
        copy_into_views(chunk.views, srcs)
        return self._pack_buf[:chunk.stop - chunk.start]

    def _chunk_offsets(self, chunk: _Chunk) -> List[Tuple[int, torch.Size]]:
        first = self.keys.index(chunk.keys[0])
        return self.offsets[first:first + len(chunk.keys)]

    def cast_buffer(self, n: int) -> torch.Tensor:
        """A kept float64 buffer of at least ``n`` values."""
        if self._cast_buf is None or self._cast_buf.numel() < n:
            self._cast_buf = torch.empty(n, dtype=torch.float64,
                                         device=self.device)
        return self._cast_buf


def copy_into_views(dst: List[torch.Tensor],
                    src: List[torch.Tensor]) -> None:
    """``dst[i].copy_(src[i])`` for all ``i``, one fused call where torch
    has ``_foreach_copy_``."""
    try:
        torch._foreach_copy_(dst, src)
    except (AttributeError, RuntimeError, TypeError):
        for d, t in zip(dst, src):
            d.copy_(t)
