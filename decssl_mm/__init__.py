"""decssl_mm: decentralized self-supervised learning for OpenMMLab 2.x.

Importing the package applies the compatibility fixes of
:mod:`decssl_mm.compat` and registers every component, among them the
crash-safe ``AtomicCheckpointHook`` and the weights-only checkpoint loaders
of :mod:`decssl_mm.engine`.
"""
from .version import __version__
from . import compat

compat.apply_all()

from . import datasets, engine, evaluation, federated, models, partition  # noqa: E402,F401,E501

__all__ = ['__version__', 'compat']
