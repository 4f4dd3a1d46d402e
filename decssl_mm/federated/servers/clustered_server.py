"""FeatARC's server: cluster models, clients assigned by their features."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose, default_collate
from mmengine.logging import print_log

from decssl_mm.evaluation.features import pooled_embedding
from decssl_mm.registry import SERVERS
from ..aggregators import BaseAggregator
from ..dist_utils import all_gather_objects
from .fedavg_server import FedAvgServer, copy_into

StateDict = Dict[str, torch.Tensor]
EXPORT_RULES = ('most_samples', 'most_clients')
MODES = ('paper', 'ours')
_BACKBONE_PREFIX = 'backbone.'
_SUBSET_TAG = 0xFEA7  # separates the assignment subset's RNG stream


@SERVERS.register_module()
class ClusteredServer(FedAvgServer):
    """FeatARC: ``C`` cluster models; each client trains its cluster's model.

    Each round:

    1. **Assignment.** Every participant ``k`` is assigned to the cluster
       whose backbone features best agree with the features of ``k``'s own
       current local model on ``k``'s data:
       ``argmax_c mean_i <f_c(x_i), f_k(x_i)>`` over ``k``'s samples ``x_i``
       (or a fixed random subset of ``assign_max_samples``), where ``f`` is
       the L2-normalised, global-average-pooled last backbone output
       (:func:`~decssl_mm.evaluation.features.pooled_embedding`), computed in
       eval mode on the *eval view* of each sample: the wrapped dataset's
       raw sample (``get_data_info``) through ``eval_pipeline``, without
       augmentation. ``f_k`` is computed when ``k`` finishes local training
       and kept in its on-disk client state (``'featarc'`` entry), so memory
       does not grow with the number of clients. A client seen for the first
       time has no local model yet and is assigned round-robin
       (``k mod C``). Ties go to the smaller cluster index.
    2. **Local training** starts from the assigned cluster's model. A
       :class:`~decssl_mm.models.FeatARC` model gets that round-start
       cluster model as its frozen reference (``set_reference``) and adds
       the alignment term to the SSL loss; any other model trains plainly
       (clustering only).
    3. **Aggregation** is cluster-wise: one aggregator per cluster (built
       from ``aggregator``; FedAvg by default, weighted by sample counts)
       over exactly the clients assigned to it this round; a cluster without
       clients keeps its model. Under N processes every rank assigns and
       trains its own share of the clients, the assignments are gathered on
       every rank, and each cluster's sums are all-reduced.
    4. **Export.** The *chosen* cluster's model becomes the global model
       (``checkpoint['state_dict']``, validation, kNN hooks). It is chosen by
       ``export_rule``, never by test accuracy: ``'most_samples'`` (default;
       the cluster holding the most training samples under the latest
       assignment of every client seen so far) or ``'most_clients'``. All
       cluster models are in ``checkpoint['federated']['extra']`` as
       ``{'clusters': [state_dict_c, ...], 'chosen': int, ...}``
       (``tools/model_converters/extract_backbone.py --cluster N``).

    Two modes (``mode``), documented side by side in docs/algorithms.md:

    - ``'paper'``, FeatARC as the paper's code ran it: cluster models
      start from *independent* initialisations (cluster ``c > 0`` from
      PyTorch's default initialisation and then the model's own, seeded by
      ``(seed, c)``); a FeatARC model is given, per client, the cluster
      model's eval-mode backbone features of the client's un-augmented
      samples (:meth:`~decssl_mm.models.FeatARC.set_alignment_targets`),
      computed once per round, and aligns its projector outputs to them.
    - ``'ours'``: every cluster starts from the same initial model; the
      FeatARC model aligns its pooled backbone features of the augmented
      views to a frozen copy of the cluster backbone
      (:meth:`~decssl_mm.models.FeatARC.set_reference`).

    Both weight the within-cluster average by samples (the paper's code
    averages unweighted) and export a cluster without looking at test data
    (the paper reports the best cluster on test data).

    Communication: a participant downloads its cluster's exchanged tensors
    (counted in ``comm/bytes_down`` as in FedAvg) and, to score the
    clusters, the ``C`` cluster backbones (counted in
    ``comm/featarc_assign_bytes_down`` and in ``comm/bytes_total``).

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
        cfg_key (str): Config key named in errors. Defaults to
            ``'train_cfg.server'``.
    """

    def __init__(self,
                 num_clusters: int = 2,
                 eval_pipeline: Optional[Sequence[dict]] = None,
                 feat_batch_size: int = 256,
                 assign_max_samples: Optional[int] = None,
                 export_rule: str = 'most_samples',
                 mode: str = 'ours',
                 aggregator: Optional[dict] = None,
                 cfg_key: str = 'train_cfg.server') -> None:
        validate_cluster_args(num_clusters, eval_pipeline, feat_batch_size,
                              assign_max_samples, export_rule, cfg_key)
        if mode not in MODES:
            raise ValueError(f'{cfg_key}.mode must be one of {MODES}, got '
                             f'{mode!r}.')
        self.mode = mode
        self.cfg_key = cfg_key
        super().__init__(aggregator=aggregator)
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

    # ----------------------------------------------------------------- setup
    def setup(self, loop) -> None:
        """Global model and cluster models (all from the initial model)."""
        if not isinstance(getattr(loop.model, 'backbone', None), nn.Module):
            raise TypeError(f'{self.cfg_key}: ClusteredServer needs a model '
                            'with a backbone; got '
                            f'{type(loop.model).__name__}.')
        super().setup(loop)
        #: Latest cluster of every client; -1 for clients never assigned.
        self.assignment = np.full(loop.num_clients, -1, np.int64)
        for agg in self.aggregators[1:]:
            agg.select_keys(list(self.global_state),
                            param_keys=self.param_keys)
            self.setup_aggregator(agg)
        self.clusters = [{
            k: v.detach().clone()
            for k, v in self.global_state.items()
        }]
        for c in range(1, self.num_clusters):
            self.clusters.append(
                independent_init(loop.model, loop.seed, c) if self.mode ==
                'paper' else {k: v.detach().clone()
                              for k, v in self.global_state.items()})

    def describe(self) -> str:
        return (f'server {type(self).__name__} ({self.mode} mode): '
                f'{self.num_clusters} clusters, export rule '
                f'{self.export_rule}')

    # -------------------------------------------------------------- features
    @property
    def model(self) -> nn.Module:
        """The loop's working model."""
        return self.loop.model

    @property
    def client_sizes(self) -> np.ndarray:
        """Samples per client."""
        return self.loop.client_sizes

    @property
    def dataset(self):
        """The client-partitioned training dataset."""
        return self.loop.dataset

    @property
    def store(self):
        """The loop's client-state store."""
        return self.loop.store

    @property
    def eval_pipeline(self) -> Compose:
        """The eval-view transforms (built on first use)."""
        if self._eval_pipeline is None:
            self._eval_pipeline = Compose(self.eval_pipeline_cfg)
        return self._eval_pipeline

    def assign_indices(self, client_id: int) -> np.ndarray:
        """The samples a client's clusters are scored on (sorted).

        Every sample, or a subset of ``assign_max_samples`` drawn from
        ``(seed, client)`` (the same subset every round).
        """
        idx = np.asarray(self.dataset.client_indices(client_id), np.int64)
        m = self.assign_max_samples
        if m is None or idx.size <= m:
            return idx
        rng = np.random.default_rng([self.loop.seed, int(client_id),
                                     _SUBSET_TAG])
        return np.sort(rng.choice(idx, size=int(m), replace=False))

    @torch.no_grad()
    def eval_features(self, backbones: Sequence[nn.Module],
                      indices: np.ndarray) -> List[torch.Tensor]:
        """Eval-view features of samples under several backbones.

        Args:
            backbones (Sequence[nn.Module]): Backbones (put in eval mode for
                the call; their mode is restored).
            indices (np.ndarray): Global sample indices.

        Returns:
            list[Tensor]: One ``len(indices) x D`` float32 CPU tensor of
            unit-norm features per backbone.
        """
        modes = [b.training for b in backbones]
        for b in backbones:
            b.eval()
        outs: List[List[torch.Tensor]] = [[] for _ in backbones]
        preprocess = self.model.data_preprocessor
        try:
            for s in range(0, len(indices), self.feat_batch_size):
                chunk = indices[s:s + self.feat_batch_size]
                data = default_collate([
                    self.eval_pipeline(self.dataset.get_data_info(int(i)))
                    for i in chunk
                ])
                inputs = preprocess(data, False)['inputs']
                for out, b in zip(outs, backbones):
                    out.append(pooled_embedding(b, inputs).float())
        finally:
            for b, mode in zip(backbones, modes):
                b.train(mode)
        # the passes ran on the model's device; one copy to the host each
        return [torch.cat(o).cpu() if o else torch.zeros(0, 0) for o in outs]

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

    # ------------------------------------------------------------- the round
    def begin_round(self, round_idx: int, mine: Sequence[int]) -> None:
        """Assign every participant to a cluster (gathered over ranks)."""
        self._probes_fresh = False
        local = {int(k): self.assign_client(int(k)) for k in mine}
        merged: Dict[int, Tuple[int, Optional[List[float]]]] = {}
        for part in all_gather_objects(local):
            merged.update(part)
        self.round_assignment = {k: c for k, (c, _) in merged.items()}
        self.round_scores = {k: s for k, (_, s) in merged.items()}
        for k, c in self.round_assignment.items():
            self.assignment[k] = c
        scored = sum(1 for s in self.round_scores.values() if s is not None)
        self._assign_bytes = scored * self.num_clusters * \
            self._backbone_bytes()
        for agg, state in zip(self.aggregators, self.clusters):
            agg.begin_round(state)

    def assign_client(self, client_id: int
                      ) -> Tuple[int, Optional[List[float]]]:
        """The cluster of a participant, and the scores it was chosen by.

        Returns:
            tuple: ``(cluster, [score_c for every c])``; the scores are None
            for a client without local features (first participation), which
            is assigned round-robin (``client_id mod C``).
        """
        saved = self.store.load(client_id)
        feats = None
        if saved is not None:
            feats = (saved.get('featarc') or {}).get('feats')
        idx = self.assign_indices(client_id)
        if idx.size == 0:  # an empty client (allow_empty_clients=True)
            return client_id % self.num_clusters, None
        if feats is None or feats.shape[0] != idx.size:
            if feats is not None:  # e.g. assign_max_samples changed
                print_log(f'FeatARC: client {client_id} has features of '
                          f'{feats.shape[0]} samples, expected {idx.size}; '
                          'keeping its previous cluster.', logger='current')
                prev = int(self.assignment[client_id])
                return (prev if prev >= 0 else
                        client_id % self.num_clusters), None
            return client_id % self.num_clusters, None
        if not self._probes_fresh:  # once per round, on first use
            self._load_probes()
            self._probes_fresh = True
        cluster_feats = self.eval_features(self._probes, idx)
        feats = feats.float()
        scores = [float((cf * feats).sum(1).mean()) for cf in cluster_feats]
        return int(np.argmax(scores)), scores

    def start_state(self, client_id: int) -> StateDict:
        """The round-start model of the client's cluster."""
        return self.clusters[self.round_assignment[int(client_id)]]

    def on_client_start(self, client_id: int, model: nn.Module) -> None:
        """Give a FeatARC model what it aligns to (by ``mode``)."""
        if self.mode == 'paper' and hasattr(model, 'set_alignment_targets'):
            idx = np.asarray(self.dataset.client_indices(client_id), np.int64)
            probe = self._cluster_probe(self.round_assignment[int(client_id)])
            feats = self.eval_features([probe], idx)[0]
            model.set_alignment_targets(torch.tensor(idx), feats)
        elif self.mode == 'ours' and hasattr(model, 'set_reference'):
            model.set_reference(self.start_state(client_id))

    def _cluster_probe(self, cluster: int) -> nn.Module:
        """The eval-mode backbone of a cluster's round-start model."""
        if not self._probes_fresh:
            self._load_probes()
            self._probes_fresh = True
        return self._probes[cluster]

    def add(self, client_id: int, state: StateDict, num_samples: int) -> None:
        """Feed the client model to its cluster's aggregator."""
        c = self.round_assignment[int(client_id)]
        self.aggregators[c].add(client_id, state, num_samples)

    def client_extras(self, client_id: int, model: nn.Module) -> dict:
        """The trained model's eval-view features (for the next assignment).
        """
        feats = self.eval_features([model.backbone],
                                   self.assign_indices(client_id))[0]
        return {
            'featarc': {
                'feats': feats,
                'cluster': int(self.round_assignment[int(client_id)]),
            }
        }

    def finish_round(self, round_idx: int) -> Dict[str, float]:
        """Cluster-wise aggregation; the chosen cluster becomes global."""
        for agg, state in zip(self.aggregators, self.clusters):
            copy_into(state, agg.finalize())
        self.chosen = self.choose_cluster()
        copy_into(self.global_state, self.clusters[self.chosen])
        return self._log_clusters(round_idx)

    def choose_cluster(self) -> int:
        """The exported cluster by ``export_rule`` (ties: smaller index)."""
        seen = self.assignment >= 0
        if not seen.any():
            return 0
        weights = (self.client_sizes if self.export_rule ==
                   'most_samples' else np.ones(len(self.assignment)))
        totals = np.bincount(self.assignment[seen],
                             weights=np.asarray(weights)[seen].astype(
                                 np.float64),
                             minlength=self.num_clusters)
        return int(np.argmax(totals))

    def _backbone_bytes(self) -> int:
        if not self.clusters:
            return 0
        return sum(t.numel() * t.element_size()
                   for t in backbone_state(self.clusters[0]).values())

    def _log_clusters(self, round_idx: int) -> Dict[str, float]:
        members: Dict[int, List[int]] = {
            c: [] for c in range(self.num_clusters)
        }
        for k, c in sorted(self.round_assignment.items()):
            members[c].append(k)
        scalars = {'featarc/chosen': float(self.chosen),
                   'comm/featarc_assign_bytes_down':
                   float(self._assign_bytes),
                   'comm/extra_bytes': float(self._assign_bytes)}
        for c, ks in members.items():
            scalars[f'featarc/cluster{c}_clients'] = float(len(ks))
        print_log(
            f'FeatARC round {round_idx + 1}: clients per cluster '
            f'{ {c: ks for c, ks in members.items()} }; exported cluster '
            f'{self.chosen} ({self.export_rule})',
            logger='current')
        return scalars

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Cluster models, chosen cluster, assignment, cluster aggregators."""
        return {
            'aggregator': self.aggregator.state_dict(),
            'extra': {
                'clusters': [{
                    k: v.detach().cpu().clone()
                    for k, v in state.items()
                } for state in self.clusters],
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
        clusters = extra['clusters']
        if isinstance(clusters, dict):
            clusters = [clusters[k] for k in sorted(clusters, key=int)]
        if len(clusters) != self.num_clusters:
            raise ValueError(
                f'{self.cfg_key}.num_clusters={self.num_clusters} but the '
                f'checkpoint holds {len(clusters)} cluster models.')
        for dst, src in zip(self.clusters, clusters):
            copy_into(dst, {k: src[k] for k in dst})
        self.chosen = int(extra.get('chosen', 0))
        assignment = extra.get('assignment')
        if assignment is not None:
            assignment = np.asarray(assignment.cpu().numpy(), np.int64)
            if assignment.size != len(self.assignment):
                raise ValueError(
                    f'the checkpoint assigns {assignment.size} clients, the '
                    f'partition has {len(self.assignment)}.')
            self.assignment = assignment
        for agg, st in zip(self.aggregators[1:],
                           extra.get('aggregators') or []):
            agg.load_state_dict(st)


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


def backbone_state(state: StateDict) -> StateDict:
    """The ``backbone.*`` tensors of a model state, prefix removed."""
    return {
        k[len(_BACKBONE_PREFIX):]: v
        for k, v in state.items() if k.startswith(_BACKBONE_PREFIX)
    }


def validate_cluster_args(num_clusters, eval_pipeline, feat_batch_size,
                          assign_max_samples, export_rule,
                          key: str) -> None:
    """Check the clustered server's arguments (errors name ``key``)."""
    if int(num_clusters) != num_clusters or num_clusters < 1:
        raise ValueError(f'{key}.num_clusters must be a positive integer, '
                         f'got {num_clusters}.')
    if not eval_pipeline or not isinstance(eval_pipeline, (list, tuple)):
        raise ValueError(
            f'{key}.eval_pipeline is required: the transforms of the '
            'un-augmented view FeatARC computes features on, e.g. '
            "[dict(type='GrayToRGB'), dict(type='Resize', scale=(32, "
            "32)), dict(type='PackInputs')].")
    if int(feat_batch_size) != feat_batch_size or feat_batch_size < 1:
        raise ValueError(f'{key}.feat_batch_size must be a positive '
                         f'integer, got {feat_batch_size}.')
    if assign_max_samples is not None and (
            int(assign_max_samples) != assign_max_samples
            or assign_max_samples < 1):
        raise ValueError(f'{key}.assign_max_samples must be None or a '
                         f'positive integer, got {assign_max_samples}.')
    if export_rule not in EXPORT_RULES:
        raise ValueError(f'{key}.export_rule must be one of '
                         f'{EXPORT_RULES}, got {export_rule!r}.')
