"""Per-sample seeding of data augmentation."""
import random
from typing import Any, Callable

import numpy as np
import torch


def seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """Call ``fn`` with Python's, numpy's and torch's global RNGs seeded.

    mmpretrain/mmcv transforms draw from these global generators. Seeding them
    per sample makes a sample's augmentation a function of ``seed`` alone,
    whichever process, worker or order produces it. The generators' previous
    states are restored afterwards.

    Args:
        seed (int): Seed of this sample's augmentation.
        fn (Callable): Produces the sample (e.g. ``lambda: dataset[idx]``).
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    seed = int(seed) % (2**31 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        return fn()
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
