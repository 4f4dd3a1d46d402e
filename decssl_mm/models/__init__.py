"""Models of decssl_mm (self-supervised adaptations, FeatARC)."""
from .featarc import FeatARC

__all__ = ['FeatARC']
