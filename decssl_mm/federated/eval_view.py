"""Features of a client's samples in their un-augmented (eval) view."""
from typing import List, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose, default_collate

from decssl_mm.evaluation.features import pooled_embedding


@torch.no_grad()
def eval_view_features(backbones: Sequence[nn.Module], preprocess: nn.Module,
                       dataset, pipeline: Compose, indices: np.ndarray,
                       batch_size: int) -> List[torch.Tensor]:
    """Eval-view features of samples under several backbones.

    Each sample is the dataset's raw sample (``get_data_info``) through
    ``pipeline``, without augmentation; a feature is the L2-normalised,
    global-average-pooled last backbone output
    (:func:`~decssl_mm.evaluation.features.pooled_embedding`).

    Args:
        backbones (Sequence[nn.Module]): Backbones (put in eval mode for the
            call; their mode is restored).
        preprocess (nn.Module): The model's data preprocessor.
        dataset: The training dataset (``get_data_info(i)``).
        pipeline (Compose): The eval-view transforms.
        indices (np.ndarray): Global sample indices.
        batch_size (int): Samples per forward pass.

    Returns:
        list[Tensor]: One ``len(indices) x D`` float32 CPU tensor of
        unit-norm features per backbone.
    """
    modes = [b.training for b in backbones]
    for b in backbones:
        b.eval()
    outs: List[List[torch.Tensor]] = [[] for _ in backbones]
    try:
        for s in range(0, len(indices), batch_size):
            chunk = indices[s:s + batch_size]
            data = default_collate(
                [pipeline(dataset.get_data_info(int(i))) for i in chunk])
            inputs = preprocess(data, False)['inputs']
            for out, b in zip(outs, backbones):
                out.append(pooled_embedding(b, inputs).float())
    finally:
        for b, mode in zip(backbones, modes):
            b.train(mode)
    # the passes ran on the model's device; one copy to the host each
    return [torch.cat(o).cpu() if o else torch.zeros(0, 0) for o in outs]
