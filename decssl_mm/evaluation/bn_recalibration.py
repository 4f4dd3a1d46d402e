"""Re-estimate a frozen network's BatchNorm statistics before a probe.

The paper's code trains its linear probe with the classifier in train mode,
so the frozen backbone's BatchNorm layers re-estimate their running
statistics on the probe's training images while the probe trains. A model
whose running statistics do not describe its features (a federated average
of clients' statistics, or an untrained network's initial ones) gains from
this more than a well-trained one. :func:`recalibrate_bn` does it
explicitly and alone: running statistics are recomputed as the plain mean
over the given batches (``momentum=None``), nothing else changes.
"""
import copy
from typing import Iterable, Optional

import torch
import torch.nn as nn

__all__ = ['recalibrate_bn', 'recalibrated_copy']

_BN = (nn.modules.batchnorm._BatchNorm, )


def _bn_layers(module: nn.Module):
    return [m for m in module.modules()
            if isinstance(m, _BN) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module,
                   dataloader: Iterable,
                   num_batches: Optional[int] = None) -> int:
    """Recompute the running statistics of every BatchNorm of ``model``.

    Each batch goes through ``model.data_preprocessor`` (no augmentation)
    and ``model.backbone`` in train mode under ``torch.no_grad``; the
    running mean and variance become the cumulative average over the
    batches (``momentum=None`` while it runs), ``num_batches_tracked``
    counts them. Weights, biases and every other buffer are untouched; each
    layer's ``momentum`` and the model's training mode are restored.

    Args:
        model (nn.Module): An mmpretrain model (``backbone``,
            ``data_preprocessor``), changed in place.
        dataloader (Iterable): Batches ``dict(inputs, data_samples)``.
        num_batches (int, optional): Use only the first batches. Defaults
            to all.

    Returns:
        int: Batches used (0 when the model has no BatchNorm layer).
    """
    from .knn import unwrap_model
    model = unwrap_model(model)
    layers = _bn_layers(model.backbone)
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.eval()
    for m in layers:
        m.train()
    used = 0
    try:
        for data in dataloader:
            if num_batches is not None and used >= num_batches:
                break
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = torch.stack(list(inputs))
            batch = model.data_preprocessor(
                dict(inputs=inputs, data_samples=data.get('data_samples')),
                False)
            model.backbone(batch['inputs'])
            used += 1
    finally:
        for m, mom in zip(layers, momenta):
            m.momentum = mom
        model.train(was_training)
    if used == 0:
        raise ValueError('BatchNorm re-estimation got no batch: the '
                         'dataloader is empty')
    return used


def recalibrated_copy(model: nn.Module, dataloader: Iterable,
                      num_batches: Optional[int] = None) -> nn.Module:
    """A deep copy of ``model`` with re-estimated BatchNorm statistics (the
    model itself is not changed)."""
    from .knn import unwrap_model
    twin = copy.deepcopy(unwrap_model(model))
    recalibrate_bn(twin, dataloader, num_batches)
    return twin
