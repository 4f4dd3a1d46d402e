"""FeatARC's cluster rules as plain functions (no server state).

The assignment score, the export rule, a cluster's backbone, an
independent initialisation, the checkpoint's assignment, the round's
scalars and the check of the clustered server's arguments. The registered
:class:`~decssl_mm.federated.servers.ClusteredServer` composes them.
"""
import copy
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log

from decssl_mm.utils.state_dict import StateDict

EXPORT_RULES = ('most_samples', 'most_clients')
SUBSET_TAG = 0xFEA7  # separates the assignment subset's RNG stream
#: Task config entry naming a site's cluster (rounds across sites).
CLUSTER_KEY = 'featarc-cluster'
MODES = ('paper', 'ours')
BACKBONE_PREFIX = 'backbone.'
_KEY = 'train_cfg.server'


def cluster_scores(cluster_feats: Sequence[torch.Tensor],
                   client_feats: torch.Tensor) -> List[float]:
    """``mean_i <f_c(x_i), f_k(x_i)>`` of every cluster ``c``.

    Args:
        cluster_feats (Sequence[Tensor]): ``N x D`` features per cluster.
        client_feats (Tensor): ``N x D`` features of the client's model.
    """
    feats = client_feats.float()
    return [float((cf * feats).sum(1).mean()) for cf in cluster_feats]


def assignment_subset(indices: np.ndarray, seed: int, client_id: int,
                      max_samples: Optional[int]) -> np.ndarray:
    """The samples a client's clusters are scored on (sorted).

    Every sample, or ``max_samples`` of them drawn from ``(seed, client)``
    (the same subset every round). The draw picks positions in
    ``indices``: a site holding the client's samples in the same (sorted)
    order draws the same samples from its own local indices.

    Args:
        indices (np.ndarray): The client's sorted sample indices.
        seed (int): The run's seed.
        client_id (int): The client.
        max_samples (int, optional): At most this many samples.
    """
    idx = np.asarray(indices, np.int64)
    if max_samples is None or idx.size <= max_samples:
        return idx
    rng = np.random.default_rng([int(seed), int(client_id), SUBSET_TAG])
    return np.sort(rng.choice(idx, size=int(max_samples), replace=False))


def assign_from_scores(client_id: int, scores: Optional[List[float]],
                       stale: bool, previous: int,
                       num_clusters: int) -> int:
    """A participant's cluster from its scores.

    The best-scoring cluster (ties: the smaller index); without scores a
    client whose features are stale (another sample count) keeps its
    previous cluster, and a client without features (first participation,
    or an empty client) goes round-robin (``client_id mod C``).

    Args:
        client_id (int): The client.
        scores (list[float], optional): One score per cluster.
        stale (bool): The client had features of another sample count.
        previous (int): Its previous cluster (-1: never assigned).
        num_clusters (int): Number of clusters.
    """
    if scores is not None:
        return int(np.argmax(scores))
    if stale and previous >= 0:
        return int(previous)
    return int(client_id) % int(num_clusters)


def choose_cluster(assignment: np.ndarray, client_sizes: np.ndarray,
                   export_rule: str, num_clusters: int) -> int:
    """The exported cluster (ties: the smaller index).

    Args:
        assignment (np.ndarray): Latest cluster of every client, -1 for
            clients never assigned.
        client_sizes (np.ndarray): Samples per client.
        export_rule (str): ``'most_samples'`` or ``'most_clients'``.
        num_clusters (int): Number of clusters.
    """
    seen = assignment >= 0
    if not seen.any():
        return 0
    weights = (client_sizes if export_rule == 'most_samples' else np.ones(
        len(assignment)))
    totals = np.bincount(assignment[seen],
                         weights=np.asarray(weights)[seen].astype(np.float64),
                         minlength=num_clusters)
    return int(np.argmax(totals))


def backbone_state(state: StateDict) -> StateDict:
    """The ``backbone.*`` tensors of a model state, prefix removed."""
    return {
        k[len(BACKBONE_PREFIX):]: v
        for k, v in state.items() if k.startswith(BACKBONE_PREFIX)
    }


def independent_init(model: nn.Module, seed: int, cluster: int) -> StateDict:
    """A fresh initialisation of ``model``'s architecture (its weights
    untouched): PyTorch's default ``reset_parameters`` of every module, then
    the model's own ``init_weights``, seeded by ``(seed, cluster)``."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) * 1000 + int(cluster))
        for m in fresh.modules():
            if hasattr(m, 'reset_parameters'):
                m.reset_parameters()
            if hasattr(m, '_is_init'):
                m._is_init = False
        if hasattr(fresh, 'init_weights'):
            fresh.init_weights()
    return {k: v.detach().clone() for k, v in fresh.state_dict().items()}


def read_assignment(assignment: torch.Tensor, num_clients: int) -> np.ndarray:
    """A checkpoint's client -> cluster assignment, checked against the
    partition's number of clients."""
    out = np.asarray(assignment.cpu().numpy(), np.int64)
    if out.size != num_clients:
        raise ValueError(f'the checkpoint assigns {out.size} clients, the '
                         f'partition has {num_clients}.')
    return out


def cluster_round_scalars(round_idx: int, round_assignment: Dict[int, int],
                          num_clusters: int, chosen: int, assign_bytes: int,
                          export_rule: str) -> Dict[str, float]:
    """A round's cluster scalars (members, chosen cluster, assignment
    bytes), logged as one line too."""
    members: Dict[int, List[int]] = {c: [] for c in range(num_clusters)}
    for k, c in sorted(round_assignment.items()):
        members[c].append(k)
    scalars = {'featarc/chosen': float(chosen),
               'comm/featarc_assign_bytes_down': float(assign_bytes),
               'comm/extra_bytes': float(assign_bytes)}
    for c, ks in members.items():
        scalars[f'featarc/cluster{c}_clients'] = float(len(ks))
    print_log(
        f'FeatARC round {round_idx + 1}: clients per cluster '
        f'{ {c: ks for c, ks in members.items()} }; exported cluster '
        f'{chosen} ({export_rule})', logger='current')
    return scalars


def validate_cluster_args(num_clusters, eval_pipeline, feat_batch_size,
                          assign_max_samples, export_rule, mode) -> None:
    """Check the clustered server's arguments (errors name the key)."""
    if int(num_clusters) != num_clusters or num_clusters < 1:
        raise ValueError(f'{_KEY}.num_clusters must be a positive integer, '
                         f'got {num_clusters}.')
    if not eval_pipeline or not isinstance(eval_pipeline, (list, tuple)):
        raise ValueError(
            f'{_KEY}.eval_pipeline is required: the transforms of the '
            'un-augmented view FeatARC computes features on, e.g. '
            "[dict(type='GrayToRGB'), dict(type='Resize', scale=(32, "
            "32)), dict(type='PackInputs')].")
    if int(feat_batch_size) != feat_batch_size or feat_batch_size < 1:
        raise ValueError(f'{_KEY}.feat_batch_size must be a positive '
                         f'integer, got {feat_batch_size}.')
    if assign_max_samples is not None and (
            int(assign_max_samples) != assign_max_samples
            or assign_max_samples < 1):
        raise ValueError(f'{_KEY}.assign_max_samples must be None or a '
                         f'positive integer, got {assign_max_samples}.')
    if export_rule not in EXPORT_RULES:
        raise ValueError(f'{_KEY}.export_rule must be one of '
                         f'{EXPORT_RULES}, got {export_rule!r}.')
    if mode not in MODES:
        raise ValueError(f'{_KEY}.mode must be one of {MODES}, got '
                         f'{mode!r}.')
