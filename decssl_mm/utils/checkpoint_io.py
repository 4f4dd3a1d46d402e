"""The federated part of a checkpoint: the one reader of its layout.

A federated checkpoint holds the loop's state under ``'federated'``; a
clustered run (FeatARC) keeps its cluster models in
``checkpoint['federated']['extra']['clusters']`` and the exported one's
index in ``['extra']['chosen']``.
"""
from typing import Any, Dict, List

from .state_dict import StateDict


def federated_extra(ckpt: Any) -> Dict[str, Any]:
    """``checkpoint['federated']['extra']`` (empty when absent)."""
    fed = ckpt.get('federated') if isinstance(ckpt, dict) else None
    extra = fed.get('extra') if isinstance(fed, dict) else None
    return extra if isinstance(extra, dict) else {}


def read_clusters(extra: Any) -> List[StateDict]:
    """The cluster models of a checkpoint's ``['federated']['extra']``.

    Args:
        extra (dict): The ``extra`` entry (see :func:`federated_extra`).

    Returns:
        list[dict]: One state dict per cluster (older checkpoints stored a
        dict ``{index: state_dict}``); empty when the run had no clusters.
    """
    clusters = extra.get('clusters') if isinstance(extra, dict) else None
    if not clusters:
        return []
    if isinstance(clusters, dict):
        clusters = [clusters[k] for k in sorted(clusters, key=int)]
    return list(clusters)
