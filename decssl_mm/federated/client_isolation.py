"""Keep a client's training on its own rank's data.

mmpretrain's self-supervised algorithms assume one data-parallel job: MoCo
and DenseCL shuffle BatchNorm batches across ranks (``batch_shuffle_ddp``)
and enqueue keys gathered from every rank, SimCLR and MoCoV3 gather negatives
from every rank, BarlowTwins all-reduces its cross-correlation matrix and
SwAV its Sinkhorn sums. In federated training each rank trains a *different*
client, so any of these would mix clients' data (and hang when ranks run
different numbers of iterations).

:func:`client_local_ops` makes every ``mmengine.dist`` collective see a world
of one process for the duration of a client's ``train_step``, and sets the
``world_size`` that SwAV's loss and the BarlowTwins head cache at build time
to 1. Hooks (logging, checkpoints) run outside the context and still see the
real world.
"""
import contextlib
from typing import Iterator

import mmengine.dist.dist as mm_dist_dist
import mmengine.dist.utils as mm_dist_utils
import torch.nn as nn


def _not_distributed() -> bool:
    return False


@contextlib.contextmanager
def client_local_ops(model: nn.Module) -> Iterator[None]:
    """Run the body as if the job had a single process.

    Args:
        model (nn.Module): The model trained in the body (its cached
            ``world_size`` attributes are set to 1 during the body).
    """
    if not mm_dist_utils.is_distributed():
        yield
        return
    saved_utils = mm_dist_utils.is_distributed
    saved_dist = getattr(mm_dist_dist, 'is_distributed', None)
    cached = [(m, m.world_size) for m in model.modules()
              if isinstance(getattr(m, 'world_size', None), int)]
    mm_dist_utils.is_distributed = _not_distributed
    if saved_dist is not None:
        mm_dist_dist.is_distributed = _not_distributed
    for m, _ in cached:
        m.world_size = 1
    try:
        yield
    finally:
        mm_dist_utils.is_distributed = saved_utils
        if saved_dist is not None:
            mm_dist_dist.is_distributed = saved_dist
        for m, ws in cached:
            m.world_size = ws
