"""The pooled feature of a backbone: what evaluation and FeatARC compare."""
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['pool_output', 'pooled_embedding']

BackboneOutput = Union[torch.Tensor, Sequence[torch.Tensor]]


def pool_output(out: BackboneOutput, normalize: bool = False) -> torch.Tensor:
    """Global-average-pool the last element of a backbone (or neck) output.

    Args:
        out (Tensor | Sequence[Tensor]): A feature map ``N x C x H x W``, a
            vector batch ``N x D``, or a tuple of them (the last is used, e.g.
            the last stage of a ResNet with ``out_indices=(3, )``).
        normalize (bool): L2-normalise every feature. Defaults to False.

    Returns:
        Tensor: ``N x D`` features.
    """
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if out.ndim == 4:
        out = out.mean(dim=(2, 3))
    out = out.flatten(1)
    return F.normalize(out, dim=1) if normalize else out


def pooled_embedding(backbone: nn.Module,
                     inputs: torch.Tensor,
                     normalize: bool = True) -> torch.Tensor:
    """The global-average-pooled last backbone output of ``inputs``.

    kNN and linear-probe evaluation read this feature un-normalised
    (``normalize=False``; kNN normalises itself, the probe standardises);
    FeatARC aligns and clusters on the normalised one, on both sides (the
    client model and the cluster/reference model).

    Args:
        backbone (nn.Module): A backbone (e.g. mmpretrain ``ResNet``).
        inputs (Tensor): Preprocessed images, ``N x C x H x W``.
        normalize (bool): Return unit-norm features. Defaults to True.

    Returns:
        Tensor: ``N x D`` features.
    """
    return pool_output(backbone(inputs), normalize=normalize)
