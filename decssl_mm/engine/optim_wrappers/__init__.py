"""Optimizer wrappers of decssl_mm (registered on import)."""
from .autocast_optim_wrapper import (AutocastOptimWrapper,
                                     resolve_autocast_dtype)

__all__ = ['AutocastOptimWrapper', 'resolve_autocast_dtype']
