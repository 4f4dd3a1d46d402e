"""Seeding the global random generators cheaply."""
import random

import numpy as np
import torch


def _accelerator_present() -> bool:
    """Whether torch sees any accelerator (CUDA, MPS, XPU, MTIA, ...)."""
    accel = getattr(torch, 'accelerator', None)
    if accel is None or not hasattr(accel, 'is_available'):
        return True  # older torch: cannot tell, take torch's full path
    return bool(accel.is_available())


def seed_host(seed: int) -> None:
    """Seed Python's, numpy's and torch's CPU generators with ``seed``.

    Args:
        seed (int): The seed (0 <= seed < 2**32 for numpy).
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators with ``seed``.

    The same generator states as ``torch.manual_seed(seed)``,
    ``np.random.seed(seed)`` and ``random.seed(seed)``. Where torch sees
    no accelerator, only the host generators are seeded
    (:func:`seed_host`): ``torch.manual_seed`` also queues a lazy seeding
    of every device backend, each capturing a Python stack (about 0.3 ms
    per call, paid per client per round by the federated loop).

    Args:
        seed (int): The seed (0 <= seed < 2**32 for numpy).
    """
    seed_host(seed)
    if _accelerator_present():
        torch.manual_seed(int(seed))  # the device generators too
