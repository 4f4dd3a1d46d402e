"""Checkpoint file helpers, kept importable under this name.

The implementations live in :mod:`decssl_mm.utils.io` (atomic writes, safe
loads) and :mod:`decssl_mm.engine` (the checkpoint hook and the loaders of
every checkpoint scheme).
"""
from .io import atomic_write_text, fsync_dir, remove_stale_temps

__all__ = ['atomic_write_text', 'fsync_dir', 'remove_stale_temps']
