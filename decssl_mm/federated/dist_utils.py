"""Small torch.distributed helpers used by the federated engine.

All helpers are no-ops in a single-process run.
"""
from typing import Any, Dict, List

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size, is_distributed


def _comm_device() -> torch.device:
    if is_distributed() and torch_dist.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def all_reduce_tensors(tensors: Dict[str, torch.Tensor],
                       op: str = 'sum') -> Dict[str, torch.Tensor]:
    """All-reduce a dict of tensors of one dtype in one flat buffer.

    Args:
        tensors (dict[str, Tensor]): Tensors to reduce; all of one dtype.
        op (str): ``'sum'`` or ``'max'``.

    Returns:
        dict[str, Tensor]: Reduced tensors (on their original devices).
    """
    if not tensors or not is_distributed() or get_world_size() == 1:
        return tensors
    keys = list(tensors)
    orig = {k: (tensors[k].device, tensors[k].shape) for k in keys}
    dev = _comm_device()
    flat = torch.cat([tensors[k].reshape(-1).to(dev) for k in keys])
    reduce_op = {
        'sum': torch_dist.ReduceOp.SUM,
        'max': torch_dist.ReduceOp.MAX
    }[op]
    torch_dist.all_reduce(flat, op=reduce_op)
    out, offset = {}, 0
    for k in keys:
        device, shape = orig[k]
        n = shape.numel()
        out[k] = flat[offset:offset + n].view(shape).to(device)
        offset += n
    return out


def all_gather_objects(obj: Any) -> List[Any]:
    """Gather one picklable object from every rank (in rank order).

    Args:
        obj: The object of this rank (plain Python data only).

    Returns:
        list: One object per rank.
    """
    if not is_distributed() or get_world_size() == 1:
        return [obj]
    out: List[Any] = [None] * get_world_size()
    torch_dist.all_gather_object(out, obj)
    return out
