from .io import atomic_torch_save, safe_torch_load

__all__ = ['atomic_torch_save', 'safe_torch_load']
