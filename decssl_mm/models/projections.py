"""The online projector outputs of a self-supervised algorithm's own step.

FeatARC as the paper ran it aligns the normalised *projector output* of
each view with a target feature. mmpretrain algorithms compute those
outputs inside ``loss()`` without returning them; :func:`capture_neck`
records what the algorithm's ``neck`` returns during one ``loss()`` call
(a forward hook: no extra forward pass), and :func:`view_projections`
turns the recorded calls into one ``N x D`` tensor per view.
"""
import contextlib
from typing import Iterator, List

import torch
import torch.nn as nn

#: Algorithms whose neck sees both views in ONE call, and in which order:
#: SimCLR stacks the views per sample (``[x0v1, x0v2, x1v1, ...]``), SwAV
#: concatenates them view after view (``[v1 of all, v2 of all, ...]``).
ONE_CALL_ORDER = {'SimCLR': 'interleaved', 'SwAV': 'view_major'}


@contextlib.contextmanager
def capture_neck(neck: nn.Module) -> Iterator[List[torch.Tensor]]:
    """Record the first output of every call of ``neck`` in the body.

    Args:
        neck (nn.Module): The algorithm's (online) neck.

    Yields:
        list[Tensor]: The recorded ``N x D`` outputs, in call order.
    """
    calls: List[torch.Tensor] = []

    def hook(module, args, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        calls.append(out.flatten(1))

    handle = neck.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def view_projections(calls: List[torch.Tensor], num_samples: int,
                     algorithm: str) -> List[torch.Tensor]:
    """One ``N x D`` projector output per view (at most two views).

    Args:
        calls (list[Tensor]): What :func:`capture_neck` recorded.
        num_samples (int): Samples ``N`` in the batch.
        algorithm (str): The algorithm's class name (see
            :data:`ONE_CALL_ORDER`).

    Returns:
        list[Tensor]: ``[p1, p2]``, or ``[p1]`` when the online projector
        sees one view only (MoCo, DenseCL: the other goes to the momentum
        encoder).

    Raises:
        ValueError: If the recorded outputs fit none of these patterns.
    """
    n = int(num_samples)
    full = [c for c in calls if c.shape[0] == n]
    if len(full) >= 2:
        return full[:2]
    if len(calls) == 1 and calls[0].shape[0] >= 2 * n:
        z = calls[0][:2 * n]
        if ONE_CALL_ORDER.get(algorithm, 'view_major') == 'interleaved':
            z = z.view(n, 2, -1)
            return [z[:, 0], z[:, 1]]
        return [z[:n], z[n:2 * n]]
    if len(full) == 1:
        return full
    raise ValueError(
        f'FeatARC (paper mode): cannot find the projector outputs of the '
        f'two views of {algorithm}: its neck returned '
        f'{[tuple(c.shape) for c in calls]} for a batch of {n}.')
