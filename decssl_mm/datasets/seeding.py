"""Per-sample seeding of data augmentation."""
import random
from typing import Any, Callable

import numpy as np
import torch


def seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """Call ``fn`` with Python's, numpy's and torch's CPU RNGs seeded.

    mmpretrain/mmcv transforms draw from these global generators. Seeding them
    per sample makes a sample's augmentation a function of ``seed`` alone,
    whichever process, worker or order produces it. The generators are left
    in the seeded state (saving and restoring them would cost ~10x the
    seeding); everything that draws from them afterwards is itself seeded by
    the federated loop, so runs stay deterministic.

    Args:
        seed (int): Seed of this sample's augmentation.
        fn (Callable): Produces the sample (e.g. ``lambda: dataset[idx]``).
    """
    seed = int(seed) % (2**31 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)
    return fn()
