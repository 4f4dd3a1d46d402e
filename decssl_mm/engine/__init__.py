"""mmengine components of decssl_mm: crash-safe checkpoint writing and
weights-only checkpoint loading for every scheme (registered on import)."""
from .atomic_local_backend import ATOMIC_LOCAL_BACKEND, AtomicLocalBackend
from .checkpoint_loader import (SAFE_CHECKPOINT_LOADERS,
                                register_safe_checkpoint_loaders)
from .hooks import (AtomicCheckpointHook, BackboneBNRecalibrationHook,
                    ChannelsLastHook)
from .optim_wrappers import AutocastOptimWrapper

__all__ = [
    'ATOMIC_LOCAL_BACKEND', 'AtomicLocalBackend', 'AtomicCheckpointHook',
    'AutocastOptimWrapper', 'BackboneBNRecalibrationHook',
    'ChannelsLastHook', 'SAFE_CHECKPOINT_LOADERS',
    'register_safe_checkpoint_loaders'
]
