"""FeatARC's server: cluster models, clients assigned by their features."""
import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose
from mmengine.logging import print_log

from decssl_mm.registry import SERVERS
from decssl_mm.utils.checkpoint_io import read_clusters
from decssl_mm.utils.state_dict import StateDict, clone_state, copy_state
from ..aggregators import BaseAggregator
from ..dist_utils import all_gather_objects
from ..eval_view import eval_view_features
from ..messages import ClientResult, RunContext
from .cluster_maths import (CLUSTER_KEY, assign_from_scores,
                            assignment_subset,
                            backbone_state, choose_cluster,
                            cluster_round_scalars, cluster_scores,
                            independent_init, read_assignment,
                            validate_cluster_args)
from .fedavg_server import FedAvgServer


@SERVERS.register_module()
class ClusteredServer(FedAvgServer):
    """FeatARC: ``C`` cluster models; each client trains its cluster's model.

    Each round:

    1. **Assignment.** Participant ``k`` goes to the cluster whose backbone
       features best agree with those of ``k``'s own latest local model on
       ``k``'s data: ``argmax_c mean_i <f_c(x_i), f_k(x_i)>`` over ``k``'s
       samples (or a fixed random subset of ``assign_max_samples``); ``f``
       is the L2-normalised, pooled last backbone output on the *eval view*
       of a sample (the raw sample through ``eval_pipeline``;
       :func:`~decssl_mm.federated.eval_view.eval_view_features`). ``f_k``
       is computed by the client after local training (task extra
       ``'feature_probe'``, result extra ``'features'``) and kept in its
       client state on disk (``'featarc'``, :attr:`memo_key`): memory does
       not grow with the clients. A first-time client is assigned
       round-robin (``k mod C``). Ties go to the smaller cluster index.
    2. **Local training** starts from the assigned cluster's model. A
       :class:`~decssl_mm.models.FeatARC` model aligns to that round-start
       cluster model (task extra ``'reference'`` or ``'alignment_targets'``,
       by ``mode``); any other model trains plainly (clustering only).
    3. **Aggregation** is cluster-wise: one aggregator per cluster (built
       from ``aggregator``) over exactly the clients assigned to it this
       round; a cluster without clients keeps its model. Under N processes
       the assignments are gathered on every rank and each cluster's sums
       are all-reduced.
    4. **Export.** The cluster chosen by ``export_rule`` (never by test
       accuracy: ``'most_samples'``, the cluster holding the most training
       samples under the latest assignment of every client seen so far, or
       ``'most_clients'``) becomes the global model (checkpoint,
       validation, kNN). All cluster models are in
       ``checkpoint['federated']['extra']`` as ``{'clusters': [state_dict_c,
       ...], 'chosen': int, ...}`` (read by
       :func:`~decssl_mm.utils.checkpoint_io.read_clusters`).

    Two modes (``mode``), side by side in docs/algorithms.md: ``'paper'``,
    as the paper's code ran it (cluster ``c > 0`` starts from an independent
    initialisation seeded by ``(seed, c)``; a FeatARC model aligns its
    projector outputs to the cluster model's eval-mode features of the
    client's un-augmented samples, computed once per round); ``'ours'``
    (every cluster starts from the initial model; the FeatARC model aligns
    its pooled backbone features of the augmented views to a frozen copy of
    the cluster backbone). Both weight the within-cluster average by
    samples. Scoring the clusters costs each participant the download of
    the ``C`` cluster backbones (``comm/featarc_assign_bytes_down``).

    Args:
        num_clusters (int): Number of cluster models ``C``. Defaults to 2.
        eval_pipeline (list[dict]): Transforms of the eval view of a raw
            sample (e.g. ``[GrayToRGB, Resize, PackInputs]``). Required.
        feat_batch_size (int): Batch size of feature extraction. Defaults
            to 256.
        assign_max_samples (int, optional): Score clusters on at most this
            many samples per client (a fixed random subset). Defaults to None
            (every sample).
        export_rule (str): ``'most_samples'`` or ``'most_clients'``.
        mode (str): ``'paper'`` or ``'ours'``. Defaults to ``'ours'``.
        aggregator (dict, optional): Aggregator config of every cluster.
    """

    needs_extras = ('features',)
    memo_key = 'featarc'
    #: Whether the round runs across sites (:meth:`serve_sites`).
    at_sites = False

    def __init__(self,
                 num_clusters: int = 2,
                 eval_pipeline: Optional[Sequence[dict]] = None,
                 feat_batch_size: int = 256,
                 assign_max_samples: Optional[int] = None,
                 export_rule: str = 'most_samples',
                 mode: str = 'ours',
                 aggregator: Optional[dict] = None) -> None:
        validate_cluster_args(num_clusters, eval_pipeline, feat_batch_size,
                              assign_max_samples, export_rule, mode)
        super().__init__(aggregator=aggregator)
        self.mode = mode
        self.num_clusters = int(num_clusters)
        self.feat_batch_size = int(feat_batch_size)
        self.assign_max_samples = assign_max_samples
        self.export_rule = export_rule
        self.eval_pipeline_cfg = copy.deepcopy(list(eval_pipeline))
        self._eval_pipeline: Optional[Compose] = None
        self.aggregators: List[BaseAggregator] = [self.aggregator] + [
            self.build_aggregator() for _ in range(self.num_clusters - 1)
        ]
        self.clusters: List[StateDict] = []
        self.assignment = np.zeros(0, np.int64)
        self.chosen = 0
        self.round_assignment: Dict[int, int] = {}
        self.round_scores: Dict[int, Optional[List[float]]] = {}
        self._probes: List[nn.Module] = []
        self._probes_fresh = False
        self._assign_bytes = 0

    @property
    def sends_extras(self) -> Tuple[str, ...]:
        """What a FeatARC model aligns to (by ``mode``) and the probe."""
        align = 'alignment_targets' if self.mode == 'paper' else 'reference'
        return (align, 'feature_probe')

    # ----------------------------------------------------------------- setup
    def setup(self, ctx: RunContext) -> None:
        """Global model and cluster models (all from the initial model)."""
        if not isinstance(getattr(ctx.model, 'backbone', None), nn.Module):
            raise TypeError('train_cfg.server: ClusteredServer needs a model '
                            'with a backbone; got '
                            f'{type(ctx.model).__name__}.')
        super().setup(ctx)
        #: Latest cluster of every client; -1 for clients never assigned.
        self.assignment = np.full(ctx.num_clients, -1, np.int64)
        for agg in self.aggregators[1:]:
            agg.select_keys(list(self.global_state),
                            param_keys=self.param_keys)
            self.setup_aggregator(agg)
        self.clusters = [clone_state(self.global_state)]
        for c in range(1, self.num_clusters):
            self.clusters.append(
                independent_init(ctx.model, ctx.seed, c) if self.mode ==
                'paper' else clone_state(self.global_state))

    def describe(self) -> str:
        return (f'server {type(self).__name__} ({self.mode} mode): '
                f'{self.num_clusters} clusters, export rule '
                f'{self.export_rule}')

    @property
    def model(self) -> nn.Module:
        """The working model (architecture, preprocessor)."""
        return self.ctx.model

    @property
    def eval_pipeline(self) -> Compose:
        """The eval-view transforms (built on first use)."""
        if self._eval_pipeline is None:
            self._eval_pipeline = Compose(self.eval_pipeline_cfg)
        return self._eval_pipeline

    def assign_indices(self, client_id: int) -> np.ndarray:
        """The samples a client's clusters are scored on (sorted; see
        :func:`~decssl_mm.federated.servers.cluster_maths.
        assignment_subset`)."""
        return assignment_subset(self.ctx.dataset.client_indices(client_id),
                                 self.ctx.seed, client_id,
                                 self.assign_max_samples)

    def eval_features(self, backbones: Sequence[nn.Module],
                      indices: np.ndarray) -> List[torch.Tensor]:
        """Eval-view features of samples under several backbones (see
        :func:`~decssl_mm.federated.eval_view.eval_view_features`)."""
        return eval_view_features(backbones, self.model.data_preprocessor,
                                  self.ctx.dataset, self.eval_pipeline,
                                  indices, self.feat_batch_size)

    def _load_probes(self) -> None:
        """Load each cluster's backbone into a scratch copy (eval mode)."""
        if not self._probes:
            self._probes = [
                copy.deepcopy(self.model.backbone)
                for _ in range(self.num_clusters)
            ]
        with torch.no_grad():
            for probe, state in zip(self._probes, self.clusters):
                probe.load_state_dict(backbone_state(state))
                probe.requires_grad_(False)
                probe.eval()

    def _cluster_probe(self, cluster: int) -> nn.Module:
        """The eval-mode backbone of a cluster's round-start model."""
        if not self._probes_fresh:  # once per round, on first use
            self._load_probes()
            self._probes_fresh = True
        return self._probes[cluster]

    def begin_round(self, round_idx: int, mine: Sequence[int],
                    memos: Optional[Dict[int, Any]] = None) -> None:
        """Assign every participant to a cluster (gathered over ranks).

        Args:
            round_idx (int): The round.
            mine (Sequence[int]): This rank's participants.
            memos (dict, optional): ``client -> its 'featarc' entry``.
        """
        memos = memos or {}
        self._probes_fresh = False
        local = {int(k): self.assign_client(int(k), memos.get(int(k)))
                 for k in mine}
        merged: Dict[int, Tuple[int, Optional[List[float]]]] = {}
        for part in all_gather_objects(local):
            merged.update(part)
        scored = sum(1 for _, s in merged.values() if s is not None)
        self._start_round(merged, scored)

    def _start_round(self, merged: Dict[int, Tuple[int, Optional[list]]],
                     downloads: int) -> None:
        """Keep the round's assignment and scores; open the aggregators."""
        self.round_assignment = {k: c for k, (c, _) in merged.items()}
        self.round_scores = {k: s for k, (_, s) in merged.items()}
        for k, c in self.round_assignment.items():
            self.assignment[k] = c
        self._assign_bytes = downloads * self.num_clusters * sum(
            t.numel() * t.element_size()
            for t in backbone_state(self.clusters[0]).values())
        for agg, state in zip(self.aggregators, self.clusters):
            agg.begin_round(state)

    # ------------------------------------------------- scoring at the sites
    def serve_sites(self) -> None:
        """Run the round across sites that keep their images and features.

        The server cannot score a site's clusters on images it does not
        have, so each round becomes two messages per participant: the
        ``C`` cluster backbones out (:meth:`score_query`) and the site's
        scores back (:meth:`begin_round_at_sites`); then the task, whose
        start state is the assigned cluster's model. The site derives what
        it aligns to from that start state (the reference, or in
        ``'paper'`` mode the alignment targets on its own images) and keeps
        its features for the next assignment on its own disk; tasks carry
        no extras and results no features.
        """
        self.at_sites = True

    def needs_scores(self, client_id: int) -> bool:
        """Whether a participant is asked for scores (a client never
        assigned has no features yet and goes round-robin)."""
        return bool(self.assignment[int(client_id)] >= 0)

    def score_query(self) -> StateDict:
        """The round-start cluster backbones a site scores,
        ``'<c>.<key>'``."""
        return {f'{c}.{k}': v for c, state in enumerate(self.clusters)
                for k, v in backbone_state(state).items()}

    def begin_round_at_sites(
            self, answers: Dict[int, Tuple[Optional[List[float]], bool]],
            queried: int) -> None:
        """Assign the participants by the scores their sites sent.

        Args:
            answers (dict): ``client -> (scores or None, stale)`` of every
                participant that takes part in the round.
            queried (int): Sites sent the cluster backbones.
        """
        merged = {int(k): (self.assign_scored(int(k), s, bool(stale)), s)
                  for k, (s, stale) in answers.items()}
        self._start_round(merged, queried)

    def assign_client(self, client_id: int, memo: Optional[dict] = None
                      ) -> Tuple[int, Optional[List[float]]]:
        """The cluster of a participant, and the scores it was chosen by.

        Args:
            client_id (int): The client.
            memo (dict, optional): Its ``'featarc'`` entry (``'feats'``: the
                eval-view features of its last local model).

        Returns:
            tuple: ``(cluster, [score_c for every c])``; the scores are None
            for a client without local features (first participation), which
            is assigned round-robin (``client_id mod C``).
        """
        feats = (memo or {}).get('feats')
        idx = self.assign_indices(client_id)
        stale = (feats is not None and idx.size > 0
                 and feats.shape[0] != idx.size)
        if stale:  # e.g. assign_max_samples changed
            print_log(f'FeatARC: client {client_id} has features of '
                      f'{feats.shape[0]} samples, expected {idx.size}; '
                      'keeping its previous cluster.', logger='current')
        scores = None
        if feats is not None and not stale and idx.size > 0:  # scored
            self._cluster_probe(0)
            scores = cluster_scores(self.eval_features(self._probes, idx),
                                    feats)
        return self.assign_scored(client_id, scores, stale), scores

    def assign_scored(self, client_id: int, scores: Optional[List[float]],
                      stale: bool = False) -> int:
        """A participant's cluster from its scores (see
        :func:`~decssl_mm.federated.servers.cluster_maths.
        assign_from_scores`)."""
        return assign_from_scores(client_id, scores, stale,
                                  int(self.assignment[client_id]),
                                  self.num_clusters)

    def start_state(self, client_id: int) -> StateDict:
        """The round-start model of the client's cluster."""
        return self.clusters[self.round_assignment[int(client_id)]]

    def configure(self, client_id: int, round_idx: int,
                  num_samples: int):
        """The task of a participant; across sites it names the cluster
        (``config[CLUSTER_KEY]``)."""
        task = super().configure(client_id, round_idx, num_samples)
        if self.at_sites:
            task.config[CLUSTER_KEY] = int(
                self.round_assignment[int(client_id)])
        return task

    def task_extras(self, client_id: int) -> Dict[str, Any]:
        """What the client aligns to (by ``mode``) and the feature probe
        (none across sites: the site derives them, see
        :meth:`serve_sites`)."""
        if self.at_sites:
            return {}
        extras: Dict[str, Any] = {
            'feature_probe': {
                'indices': torch.tensor(self.assign_indices(client_id)),
                'pipeline': self.eval_pipeline_cfg,
                'batch_size': self.feat_batch_size,
            }
        }
        if self.mode == 'ours':
            extras['reference'] = self.start_state(client_id)
        elif hasattr(self.model, 'set_alignment_targets'):
            idx = np.asarray(self.ctx.dataset.client_indices(client_id),
                             np.int64)
            probe = self._cluster_probe(self.round_assignment[int(client_id)])
            extras['alignment_targets'] = {
                'indices': torch.tensor(idx),
                'feats': self.eval_features([probe], idx)[0],
            }
        return extras

    def add(self, result: ClientResult) -> Dict[str, Any]:
        """Feed the client model to its cluster's aggregator; keep the
        client's features for its next assignment (in process; a site
        keeps its own)."""
        c = self.round_assignment[int(result.client_id)]
        self.aggregators[c].add(result.client_id, result.update,
                                result.num_samples)
        if self.at_sites:
            return {}
        return {self.memo_key: {'feats': result.extras['features'],
                                'cluster': int(c)}}

    def finish_round(self, round_idx: int) -> Dict[str, float]:
        """Cluster-wise aggregation; the chosen cluster becomes global."""
        for agg, state in zip(self.aggregators, self.clusters):
            copy_state(state, agg.finalize())
        self.chosen = self.choose_cluster()
        copy_state(self.global_state, self.clusters[self.chosen])
        return cluster_round_scalars(round_idx, self.round_assignment,
                                     self.num_clusters, self.chosen,
                                     self._assign_bytes, self.export_rule)

    def choose_cluster(self) -> int:
        """The exported cluster by ``export_rule``."""
        return choose_cluster(self.assignment, self.ctx.client_sizes,
                              self.export_rule, self.num_clusters)


    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Cluster models, chosen cluster, assignment, cluster aggregators."""
        return {
            'aggregator': self.aggregator.state_dict(),
            'extra': {
                'clusters': [clone_state(state, 'cpu')
                             for state in self.clusters],
                'chosen': int(self.chosen),
                'assignment': torch.from_numpy(self.assignment.copy()),
                'aggregators':
                [agg.state_dict() for agg in self.aggregators[1:]],
            } if self.clusters else {}
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (on resume)."""
        super().load_state_dict(state)
        extra = state.get('extra') or {}
        if not extra:
            return
        clusters = read_clusters(extra)
        if len(clusters) != self.num_clusters:
            raise ValueError(
                f'train_cfg.server.num_clusters={self.num_clusters} but the '
                f'checkpoint holds {len(clusters)} cluster models.')
        for dst, src in zip(self.clusters, clusters):
            copy_state(dst, {k: src[k] for k in dst})
        self.chosen = int(extra.get('chosen', 0))
        assignment = extra.get('assignment')
        if assignment is not None:
            self.assignment = read_assignment(assignment,
                                              len(self.assignment))
        for agg, st in zip(self.aggregators[1:],
                           extra.get('aggregators') or []):
            agg.load_state_dict(st)
