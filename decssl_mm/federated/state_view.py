"""The tensors of a module's state dict, read without walking the module."""
from typing import List, MutableMapping, Tuple

import torch
from torch import nn

from decssl_mm.utils.state_dict import StateDict
_Entry = Tuple[str, MutableMapping, str]


class ModelStateView:
    """Repeated, cheap reads of the tensors ``module.state_dict()`` holds.

    ``state_dict()`` recurses through every submodule, runs state-dict
    hooks and detaches every tensor: about half a millisecond at ResNet-18
    size, twice for every client of every round. The view indexes once, by
    :meth:`refresh`, where each key lives (the owning module's parameter or
    buffer dict and the name in it) and reads the owners' current tensors at
    every :meth:`tensors` call (~0.02 ms), so a parameter reassigned
    (``module.weight = nn.Parameter(...)``) or whose ``.data`` is swapped
    is read as it is now. A structural change (a submodule or parameter
    added or removed) needs a :meth:`refresh`; the client trainer refreshes
    at the start of every round.

    Where the index would not reproduce ``state_dict()`` exactly (same keys
    in the same order, the same storage for each: a module with state-dict
    hooks, its own ``_save_to_state_dict`` or extra state),
    :meth:`tensors` is ``state_dict()`` itself.

    The tensors are the module's own: parameters are not detached. Read or
    copy them under ``torch.no_grad()``, and copy what must outlive the
    next change of the module.

    Args:
        module (nn.Module): The module (e.g. the unwrapped working model).
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._index: List[_Entry] = []
        self.exact = False
        self.refresh()

    def refresh(self) -> None:
        """Index the module's state anew (after a change of its structure).
        """
        index = _index_state(self.module)
        self.exact = index is not None and _same_as_state_dict(
            self.module, index)
        self._index = index if self.exact else []

    def tensors(self) -> StateDict:
        """The state dict's tensors, in its order (see the class note)."""
        if not self.exact:
            return self.module.state_dict()
        return {key: owner[name] for key, owner, name in self._index}


def _index_state(module: nn.Module):
    """``[(key, owner dict, name)]`` in ``state_dict()`` order, or None
    where a module customises its state dict."""
    index: List[_Entry] = []
    for prefix, m in module.named_modules(remove_duplicate=False):
        if _customised(m):
            return None
        dot = prefix + '.' if prefix else ''
        for name, p in m._parameters.items():
            if p is not None:
                index.append((dot + name, m._parameters, name))
        for name, b in m._buffers.items():
            if b is not None and name not in m._non_persistent_buffers_set:
                index.append((dot + name, m._buffers, name))
    return index


def _customised(m: nn.Module) -> bool:
    """Whether ``m`` changes what ``state_dict()`` returns for it."""
    cls = type(m)
    return bool(
        getattr(m, '_state_dict_hooks', None)
        or getattr(m, '_state_dict_pre_hooks', None)
        or cls._save_to_state_dict is not nn.Module._save_to_state_dict
        or cls.get_extra_state is not nn.Module.get_extra_state)


def _same_as_state_dict(module: nn.Module, index: List[_Entry]) -> bool:
    """Whether the index gives ``state_dict()``'s keys, order and storage.
    """
    ref = module.state_dict()
    if [k for k, _, _ in index] != list(ref):
        return False
    for key, owner, name in index:
        t, r = owner[name], ref[key]
        if t.shape != r.shape or t.dtype != r.dtype or \
                t.device != r.device or (
                    t.numel() > 0 and t.data_ptr() != r.data_ptr()):
            return False
    return True
