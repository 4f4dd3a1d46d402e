"""Per-sample seeding of data augmentation."""
from typing import Any, Callable

from decssl_mm.utils.rng import seed_host


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
    seed_host(int(seed) % (2**31 - 1))
    return fn()
