"""FeatARC's federated loop: cluster models, feature-based assignment."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose, default_collate
from mmengine.logging import print_log
from torch.utils.data import DataLoader

from decssl_mm.models.featarc import pooled_embedding
from decssl_mm.registry import AGGREGATORS, LOOPS
from .aggregators import BaseAggregator
from .dist_utils import all_gather_objects
from .loop import FederatedTrainLoop, _build

StateDict = Dict[str, torch.Tensor]
_EXPORT_RULES = ('most_samples', 'most_clients')
_BACKBONE_PREFIX = 'backbone.'
_SUBSET_TAG = 0xFEA7  # separates the assignment subset's RNG stream


@LOOPS.register_module()
class FeatARCTrainLoop(FederatedTrainLoop):
    """FeatARC: feature alignment and clustering over ``C`` cluster models.

    The server keeps ``num_clusters`` models, all starting from the initial
    model. Each round:

    1. **Assignment.** Every participant ``k`` is assigned to the cluster
       whose backbone features best agree with the features of ``k``'s own
       current local model on ``k``'s data:
       ``argmax_c mean_i <f_c(x_i), f_k(x_i)>`` over ``k``'s samples ``x_i``
       (or a fixed random subset of ``assign_max_samples``), where ``f`` is
       the L2-normalised, global-average-pooled last backbone output
       (:func:`~decssl_mm.models.featarc.pooled_embedding`), computed in
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
    4. **Export.** The *chosen* cluster's model becomes the loop's global
       model (``checkpoint['state_dict']``, validation, kNN hooks). It is
       chosen by ``export_rule``, never by test accuracy:
       ``'most_samples'`` (default; the cluster holding the most training
       samples under the latest assignment of every client seen so far) or
       ``'most_clients'``. All cluster models are in
       ``checkpoint['federated']['extra']`` as
       ``{'clusters': [state_dict_c, ...], 'chosen': int, ...}``
       (``tools/model_converters/extract_backbone.py --cluster N``).

    Communication: a participant downloads its cluster's exchanged tensors
    (counted in ``comm/bytes_down`` as in FedAvg) and, to score the
    clusters, the ``C`` cluster backbones (counted in
    ``comm/featarc_assign_bytes_down`` and in ``comm/bytes_total``).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): As :class:`FederatedTrainLoop`.
        num_clusters (int): Number of cluster models ``C``. Defaults to 2.
        eval_pipeline (list[dict]): Transforms of the eval view of a raw
            sample (e.g. ``[GrayToRGB, Resize, PackInputs]``). Required.
        feat_batch_size (int): Batch size of feature extraction. Defaults
            to 256.
        assign_max_samples (int, optional): Score clusters on at most this
            many samples per client (a fixed random subset). Defaults to None
            (every sample).
        export_rule (str): ``'most_samples'`` or ``'most_clients'``.
        aggregator (dict, optional): Aggregator config of every cluster.
        **kwargs: Other arguments of :class:`FederatedTrainLoop`.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 num_clusters: int = 2,
                 eval_pipeline: Optional[Sequence[dict]] = None,
                 feat_batch_size: int = 256,
                 assign_max_samples: Optional[int] = None,
                 export_rule: str = 'most_samples',
                 aggregator: Optional[dict] = None,
                 **kwargs) -> None:
        self._validate_featarc_args(num_clusters, eval_pipeline,
                                    feat_batch_size, assign_max_samples,
                                    export_rule)
        super().__init__(runner, dataloader, aggregator=aggregator, **kwargs)
        if not isinstance(getattr(self.model, 'backbone', None), nn.Module):
            raise TypeError('FeatARCTrainLoop needs a model with a backbone; '
                            f'got {type(self.model).__name__}.')
        self.num_clusters = int(num_clusters)
        self.feat_batch_size = int(feat_batch_size)
        self.assign_max_samples = assign_max_samples
        self.export_rule = export_rule
        self.eval_pipeline_cfg = copy.deepcopy(list(eval_pipeline))
        self._eval_pipeline: Optional[Compose] = None
        self.aggregators: List[BaseAggregator] = [self.aggregator] + [
            _build(AGGREGATORS, aggregator, 'aggregator',
                   dict(type='FedAvg'))
            for _ in range(self.num_clusters - 1)
        ]
        self.clusters: List[StateDict] = []
        #: Latest cluster of every client; -1 for clients never assigned.
        self.assignment = np.full(self.num_clients, -1, np.int64)
        self.chosen = 0
        self.round_assignment: Dict[int, int] = {}
        self.round_scores: Dict[int, Optional[List[float]]] = {}
        self._probes: List[nn.Module] = []
        self._probes_fresh = False
        self._assign_bytes = 0

    @staticmethod
    def _validate_featarc_args(num_clusters, eval_pipeline, feat_batch_size,
                               assign_max_samples, export_rule) -> None:
        if int(num_clusters) != num_clusters or num_clusters < 1:
            raise ValueError('train_cfg.num_clusters must be a positive '
                             f'integer, got {num_clusters}.')
        if not eval_pipeline or not isinstance(eval_pipeline, (list, tuple)):
            raise ValueError(
                'train_cfg.eval_pipeline is required: the transforms of the '
                'un-augmented view FeatARC computes features on, e.g. '
                "[dict(type='GrayToRGB'), dict(type='Resize', scale=(32, "
                "32)), dict(type='PackInputs')].")
        if int(feat_batch_size) != feat_batch_size or feat_batch_size < 1:
            raise ValueError('train_cfg.feat_batch_size must be a positive '
                             f'integer, got {feat_batch_size}.')
        if assign_max_samples is not None and (
                int(assign_max_samples) != assign_max_samples
                or assign_max_samples < 1):
            raise ValueError('train_cfg.assign_max_samples must be None or a '
                             f'positive integer, got {assign_max_samples}.')
        if export_rule not in _EXPORT_RULES:
            raise ValueError(f'train_cfg.export_rule must be one of '
                             f'{_EXPORT_RULES}, got {export_rule!r}.')

    # ------------------------------------------------------------ clusters
    def _ensure_clusters(self) -> None:
        """Create the cluster models from the global model (once)."""
        if self.clusters:
            return
        keys = list(self.global_state)
        for agg in self.aggregators[1:]:
            agg.select_keys(keys)
        self.clusters = [{
            k: v.detach().clone()
            for k, v in self.global_state.items()
        } for _ in range(self.num_clusters)]

    def _load_probes(self) -> None:
        """Load each cluster's backbone into a scratch copy (eval mode)."""
        if not self._probes:
            self._probes = [
                copy.deepcopy(self.model.backbone)
                for _ in range(self.num_clusters)
            ]
        with torch.no_grad():
            for probe, state in zip(self._probes, self.clusters):
                probe.load_state_dict(self._backbone_state(state))
                probe.requires_grad_(False)
                probe.eval()

    @staticmethod
    def _backbone_state(state: StateDict) -> StateDict:
        return {
            k[len(_BACKBONE_PREFIX):]: v
            for k, v in state.items() if k.startswith(_BACKBONE_PREFIX)
        }

    # ------------------------------------------------------------ features
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
        rng = np.random.default_rng([self.seed, int(client_id), _SUBSET_TAG])
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
                    out.append(pooled_embedding(b, inputs).float().cpu())
        finally:
            for b, mode in zip(backbones, modes):
                b.train(mode)
        return [
            torch.cat(o) if o else torch.zeros(0, 0) for o in outs
        ]

    # ------------------------------------------------------------ the round
    def begin_round(self, round_idx: int,
                    participants: np.ndarray) -> List[int]:
        """Share the clients, assign every participant to a cluster."""
        mine = super().begin_round(round_idx, participants)
        self._ensure_clusters()
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
        return mine

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

    def load_client(self, client_id: int, round_idx: int) -> None:
        """Load the cluster model; make it the FeatARC reference."""
        super().load_client(client_id, round_idx)
        if hasattr(self.model, 'set_reference'):
            self.model.set_reference(self.start_state(client_id))

    def add_client_update(self, client_id: int, state: StateDict,
                          num_samples: int) -> None:
        """Feed the client model to its cluster's aggregator."""
        c = self.round_assignment[int(client_id)]
        self.aggregators[c].add(client_id, state, num_samples)

    def client_local_state(self, client_id: int, state: StateDict) -> dict:
        """Local tensors plus the trained model's eval-view features."""
        out = super().client_local_state(client_id, state)
        feats = self.eval_features([self.model.backbone],
                                   self.assign_indices(client_id))[0]
        out['featarc'] = {
            'feats': feats,
            'cluster': int(self.round_assignment[int(client_id)]),
        }
        return out

    def finish_round(self, round_idx: int) -> None:
        """Cluster-wise aggregation; the chosen cluster becomes global."""
        for agg, state in zip(self.aggregators, self.clusters):
            new = agg.finalize()
            if new is not None:
                for k, v in new.items():
                    state[k].copy_(v)
        self.chosen = self.choose_cluster()
        with torch.no_grad():
            for k, t in self.global_state.items():
                t.copy_(self.clusters[self.chosen][k])
        self.comm_bytes_total += self._assign_bytes
        self._log_clusters(round_idx)

    def choose_cluster(self) -> int:
        """The exported cluster by ``export_rule`` (ties: smaller index)."""
        seen = self.assignment >= 0
        if not seen.any():
            return 0
        weights = (self.client_sizes if self.export_rule == 'most_samples'
                   else np.ones(self.num_clients))
        totals = np.bincount(self.assignment[seen],
                             weights=weights[seen].astype(np.float64),
                             minlength=self.num_clusters)
        return int(np.argmax(totals))

    def _backbone_bytes(self) -> int:
        if not self.clusters:
            return 0
        return sum(t.numel() * t.element_size()
                   for t in self._backbone_state(self.clusters[0]).values())

    def _log_clusters(self, round_idx: int) -> None:
        members: Dict[int, List[int]] = {
            c: [] for c in range(self.num_clusters)
        }
        for k, c in sorted(self.round_assignment.items()):
            members[c].append(k)
        hub = self.runner.message_hub
        scalars = {'featarc/chosen': float(self.chosen),
                   'comm/featarc_assign_bytes_down':
                   float(self._assign_bytes)}
        for c, ks in members.items():
            scalars[f'featarc/cluster{c}_clients'] = float(len(ks))
        for key, val in scalars.items():
            hub.update_scalar(f'train/{key}', val)
        print_log(
            f'FeatARC round {round_idx + 1}: clients per cluster '
            f'{ {c: ks for c, ks in members.items()} }; exported cluster '
            f'{self.chosen} ({self.export_rule})',
            logger='current')

    # ---------------------------------------------------------- checkpoints
    def extra_state_dict(self) -> dict:
        """Cluster models, chosen cluster, assignment, cluster aggregators."""
        if not self.clusters:
            return {}
        return {
            'clusters': [{
                k: v.detach().cpu().clone()
                for k, v in state.items()
            } for state in self.clusters],
            'chosen': int(self.chosen),
            'assignment': torch.from_numpy(self.assignment.copy()),
            'aggregators': [agg.state_dict() for agg in self.aggregators[1:]],
        }

    def load_extra_state_dict(self, state: dict) -> None:
        """Restore :meth:`extra_state_dict` (on resume)."""
        if not state:
            return
        clusters = state['clusters']
        if isinstance(clusters, dict):
            clusters = [clusters[k] for k in sorted(clusters, key=int)]
        if len(clusters) != self.num_clusters:
            raise ValueError(
                f'train_cfg.num_clusters={self.num_clusters} but the '
                f'checkpoint holds {len(clusters)} cluster models.')
        self._ensure_clusters()
        with torch.no_grad():
            for dst, src in zip(self.clusters, clusters):
                for k, t in dst.items():
                    t.copy_(src[k])
        self.chosen = int(state.get('chosen', 0))
        assignment = state.get('assignment')
        if assignment is not None:
            assignment = np.asarray(assignment.cpu().numpy(), np.int64)
            if assignment.size != self.num_clients:
                raise ValueError(
                    f'the checkpoint assigns {assignment.size} clients, the '
                    f'partition has {self.num_clients}.')
            self.assignment = assignment
        for agg, st in zip(self.aggregators[1:],
                           state.get('aggregators') or []):
            agg.load_state_dict(st)
