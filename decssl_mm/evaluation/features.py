"""The pooled feature of a backbone: what evaluation and FeatARC compare."""
import inspect
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['backbone_output', 'pool_output', 'pooled_embedding']

BackboneOutput = Union[torch.Tensor, Sequence[torch.Tensor]]


def pool_output(out: BackboneOutput,
                normalize: bool = False,
                skip_tokens: int = 0) -> torch.Tensor:
    """Global-average-pool the last element of a backbone (or neck) output.

    Args:
        out (Tensor | Sequence[Tensor]): A feature map ``N x C x H x W``, a
            token batch ``N x L x C`` (a ViT with ``out_type='raw'``), a
            vector batch ``N x D``, or a tuple of them (the last is used, e.g.
            the last stage of a ResNet with ``out_indices=(3, )``).
        normalize (bool): L2-normalise every feature. Defaults to False.
        skip_tokens (int): Leading tokens of a token batch left out of the
            mean (the class token of a ViT). Defaults to 0.

    Returns:
        Tensor: ``N x D`` features.
    """
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if out.ndim == 4:
        out = out.mean(dim=(2, 3))
    elif out.ndim == 3:
        out = out[:, skip_tokens:].mean(dim=1)
    out = out.flatten(1)
    return F.normalize(out, dim=1) if normalize else out


def backbone_output(backbone: nn.Module,
                    inputs: torch.Tensor) -> BackboneOutput:
    """The backbone's output for whole, unmasked images.

    Masked-image-modelling backbones (mmpretrain ``MAEViT`` and others whose
    ``forward`` takes a ``mask`` argument) mask patches at random unless
    called with ``mask=None``; evaluation and FeatARC need the feature of the
    whole image, deterministic in eval mode.

    Args:
        backbone (nn.Module): A backbone.
        inputs (Tensor): Preprocessed images, ``N x C x H x W``.

    Returns:
        Tensor | tuple: What the backbone returns.
    """
    if 'mask' in inspect.signature(backbone.forward).parameters:
        return backbone(inputs, mask=None)
    return backbone(inputs)


def pooled_embedding(backbone: nn.Module,
                     inputs: torch.Tensor,
                     normalize: bool = True) -> torch.Tensor:
    """The global-average-pooled last backbone output of ``inputs``.

    kNN and linear-probe evaluation read this feature un-normalised
    (``normalize=False``; kNN normalises itself, the probe standardises);
    FeatARC aligns and clusters on the normalised one, on both sides (the
    client model and the cluster/reference model). A ViT's token output is
    the mean of its patch tokens (class and other extra tokens left out).

    Args:
        backbone (nn.Module): A backbone (e.g. mmpretrain ``ResNet``).
        inputs (Tensor): Preprocessed images, ``N x C x H x W``.
        normalize (bool): Return unit-norm features. Defaults to True.

    Returns:
        Tensor: ``N x D`` features.
    """
    skip = getattr(backbone, 'num_extra_tokens', 0)
    return pool_output(backbone_output(backbone, inputs),
                       normalize=normalize,
                       skip_tokens=skip)
