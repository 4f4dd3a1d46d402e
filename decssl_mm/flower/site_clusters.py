"""FeatARC at a site: its clusters scored, and aligned to, on its own images.

Across sites the server of FeatARC (:class:`~decssl_mm.federated.servers.
ClusteredServer`, see its ``serve_sites``) cannot see a site's images, so
the site does what the in-process server does with them: it scores the
round-start cluster backbones against the features its own last local
model left on its disk, and it derives from its task's start state what the
FeatARC model aligns to. Every rule (subset, score, features) is the
in-process one, on the site's images in their partition order, so the
round equals the in-process round.
"""
import copy
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log

from decssl_mm.federated.eval_view import eval_view_features
from decssl_mm.federated.messages import ClientResult, ClientTask
from decssl_mm.federated.servers import ClusteredServer
from decssl_mm.federated.servers.cluster_maths import (CLUSTER_KEY,
                                                       assignment_subset,
                                                       backbone_state,
                                                       cluster_scores)
from decssl_mm.registry import SERVERS
from decssl_mm.utils.state_dict import StateDict

class SiteClusters:
    """A site's part of FeatARC's round.

    Args:
        server (ClusteredServer): The config's server, built at the site
            for its settings (mode, eval pipeline, batch size, subset).
        node (str): The site's name in errors.
    """

    def __init__(self, server: ClusteredServer, node: str) -> None:
        self.server = server
        self.node = node

    @classmethod
    def of_config(cls, cfg, node: str) -> Optional['SiteClusters']:
        """The site's FeatARC part if the config's server is FeatARC's."""
        server_cfg = (cfg.get('train_cfg') or {}).get('server')
        if not server_cfg:
            return None
        server = SERVERS.build(copy.deepcopy(server_cfg))
        return cls(server, node) if isinstance(server,
                                               ClusteredServer) else None

    # --------------------------------------------------------------- views
    def probe_indices(self, dataset, seed: int, site_id: int) -> np.ndarray:
        """The site's samples its clusters are scored on (the in-process
        client's subset, as local indices)."""
        return assignment_subset(dataset.client_indices(0), seed, site_id,
                                 self.server.assign_max_samples)

    def features(self, backbones: List[nn.Module], model: nn.Module, dataset,
                 indices: np.ndarray) -> List[torch.Tensor]:
        """Eval-view features of the site's samples under ``backbones``."""
        return eval_view_features(backbones, model.data_preprocessor,
                                  dataset, self.server.eval_pipeline,
                                  indices, self.server.feat_batch_size)

    def probe(self, model: nn.Module, state: StateDict,
              what: str) -> nn.Module:
        """An eval-mode copy of ``model``'s backbone holding ``state``
        (``backbone.*`` keys removed of their prefix).

        Raises:
            ValueError: ``state`` lacks backbone tensors, naming them.
        """
        self.check_backbone(model, state, what)
        probe = copy.deepcopy(model.backbone)
        probe.load_state_dict(dict(state), strict=True)
        probe.requires_grad_(False)
        probe.eval()  # (some backbones' train() returns None)
        return probe

    def check_backbone(self, model: nn.Module, state: StateDict,
                       what: str) -> None:
        """Refuse a state that lacks some of ``model``'s backbone tensors
        (prefix removed), naming them."""
        missing = sorted(set(model.backbone.state_dict()) - set(state))
        if missing:
            raise ValueError(
                f'{self.node}: FeatARC across sites needs the whole backbone '
                f'in {what}; missing {missing[:4]} (keys the aggregator '
                'keeps at the sites cannot be scored or aligned to).')

    # ------------------------------------------------------------ scoring
    def scores(self, model: nn.Module, dataset, clusters: StateDict,
               memo: Optional[dict], seed: int,
               site_id: int) -> Tuple[Optional[List[float]], bool]:
        """The site's score of every cluster.

        Args:
            model (nn.Module): The site's model (architecture, preprocessor).
            dataset: The site's training dataset (one client).
            clusters (dict): The round-start cluster backbones,
                ``'<c>.<key>'`` (:meth:`ClusteredServer.score_query`).
            memo (dict, optional): What the site kept under ``'featarc'``
                (``'feats'``: its last local model's features).
            seed (int): The run's seed.
            site_id (int): The site's client id.

        Returns:
            tuple: ``(scores or None, stale)``; None without features
            (lost state), ``stale`` when they are of another sample count.
        """
        feats = (memo or {}).get('feats')
        idx = self.probe_indices(dataset, seed, site_id)
        if feats is None or idx.size == 0:
            return None, False
        if feats.shape[0] != idx.size:
            print_log(f'FeatARC: {self.node} has features of '
                      f'{feats.shape[0]} samples, expected {idx.size}; '
                      'it keeps its previous cluster.', logger='current')
            return None, True
        probes = [self.probe(model, state, f'cluster {c}')
                  for c, state in enumerate(self.split(clusters))]
        return cluster_scores(self.features(probes, model, dataset, idx),
                              feats), False

    def split(self, clusters: StateDict) -> List[StateDict]:
        """``'<c>.<key>'`` tensors as one backbone state per cluster."""
        out: List[Dict[str, torch.Tensor]] = [
            {} for _ in range(self.server.num_clusters)]
        for name, t in clusters.items():
            c, key = name.split('.', 1)
            if not c.isdigit() or int(c) >= len(out):
                raise ValueError(f'{self.node}: cluster tensor {name!r} of '
                                 f'a server with {len(out)} clusters.')
            out[int(c)][key] = t
        return out

    # ---------------------------------------------------------- training
    def prepare(self, task: ClientTask, model: nn.Module, dataset) -> None:
        """Add to a task the extras the in-process server sends: the
        feature probe, and the reference (``'ours'``) or the alignment
        targets on the site's images (``'paper'``), from the start state
        (the round-start model of the site's cluster)."""
        idx = self.probe_indices(dataset, task.seed, task.client_id)
        task.extras['feature_probe'] = {
            'indices': torch.tensor(idx),
            'pipeline': self.server.eval_pipeline_cfg,
            'batch_size': self.server.feat_batch_size,
        }
        start = backbone_state(task.start_state)
        if self.server.mode == 'ours':
            self.check_backbone(model, start, 'the task')
            task.extras['reference'] = task.start_state
        elif hasattr(model, 'set_alignment_targets'):
            every = np.asarray(dataset.client_indices(0), np.int64)
            probe = self.probe(model, start, 'the task')
            task.extras['alignment_targets'] = {
                'indices': torch.tensor(every),
                'feats': self.features([probe], model, dataset, every)[0],
            }

    def keep_features(self, task: ClientTask, result: ClientResult) -> None:
        """Move the trained model's features from the result (they do not
        travel) into the site's local state, for its next scoring."""
        result.local_state[self.server.memo_key] = {
            'feats': result.extras.pop('features'),
            'cluster': int(task.config.get(CLUSTER_KEY, -1)),
        }
