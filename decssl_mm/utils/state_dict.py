"""Model states as plain dicts of tensors: the one alias and copy helper."""
from typing import Dict, List, Optional

import torch

#: A model's (or an update's) tensors by state-dict key.
StateDict = Dict[str, torch.Tensor]


def copy_tensors(dst: List[torch.Tensor], src: List[torch.Tensor]) -> None:
    """``dst[i].copy_(src[i])`` for every ``i``, in place, without autograd.

    One fused ``torch._foreach_copy_`` where torch has it, a loop otherwise
    (the copied values are the same either way).

    Args:
        dst (list[Tensor]): Tensors to overwrite.
        src (list[Tensor]): New values (any device and dtype, same shapes).
    """
    with torch.no_grad():
        try:
            torch._foreach_copy_(dst, src)
        except (AttributeError, RuntimeError, TypeError):
            for d, s in zip(dst, src):
                d.copy_(s)


def copy_state(dst: StateDict, src: Optional[StateDict]) -> None:
    """Copy every tensor of ``src`` into ``dst`` under the same key, in place.

    The one way a state is written into another one (start weights into the
    working model, an aggregate into the global model, a checkpoint's
    cluster into a cluster model). Tensors keep their device, dtype and
    memory layout.

    Args:
        dst (dict[str, Tensor]): The state to overwrite; holds every key of
            ``src``.
        src (dict[str, Tensor], optional): New values; None copies nothing.
    """
    if not src:
        return
    keys = list(src)
    copy_tensors([dst[k] for k in keys], [src[k] for k in keys])


def clone_state(state: StateDict, device: Optional[str] = None) -> StateDict:
    """Detached copies of a state's tensors (on ``device`` if given)."""
    return {
        k: (v.detach().to(device) if device else v.detach()).clone()
        for k, v in state.items()
    }
