"""A site: the shared config made local, its data, its state on disk."""
import copy
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from decssl_mm.evaluation.knn import unwrap_model
from decssl_mm.federated.messages import ClientResult, ClientTask
from decssl_mm.federated.round_data import with_round_batch_sampler
from .fingerprint import config_fingerprint
from .node_config import SiteConfig
from .site_clusters import SiteClusters
from .site_loop import SiteFitLoop


def _single_client(dataset_cfg: dict, data_root: str) -> dict:
    """The config's client-partitioned dataset as one client: the site's
    images under ``data_root``, in their own order."""
    cfg = copy.deepcopy(dataset_cfg)
    if cfg.get('type') not in ('ClientPartitionedDataset',
                               'decssl_mm.ClientPartitionedDataset'):
        raise ValueError('Over Flower, train_dataloader.dataset must be a '
                         'ClientPartitionedDataset (the site becomes its one '
                         f"client); got {cfg.get('type')!r}.")
    cfg['dataset']['data_root'] = data_root
    cfg.pop('partition_file', None)
    cfg.pop('save_partition', None)
    cfg.pop('features_file', None)
    cfg['partition'] = dict(type='IID', num_clients=1, seed=0)
    return cfg


class Site:
    """What a site needs to answer a task, built from the shared config.

    Args:
        config (str | Config): The shared mmengine config (path or object).
        site (SiteConfig): The site's node config.
    """

    def __init__(self, config, site: SiteConfig) -> None:
        cfg = config if isinstance(config, Config) else \
            Config.fromfile(config)
        self.fingerprint = config_fingerprint(cfg)
        self.site = site
        self.cfg = self.local_config(cfg)
        self._dataset = None
        self.clusters = SiteClusters.of_config(self.cfg, site.node)

    def local_config(self, cfg: Config) -> Config:
        """The config as this site runs it: its data root, its state dir,
        no checkpoints or evaluation hooks (those are the server's)."""
        cfg = copy.deepcopy(cfg)
        cfg.work_dir = osp.join(self.site.state_dir, 'work')
        cfg.experiment_name = 'site'
        loader = with_round_batch_sampler(cfg.train_dataloader)
        loader['dataset'] = _single_client(loader['dataset'],
                                           self.site.data_root)
        loader['persistent_workers'] = False
        cfg.train_dataloader = loader
        cfg.custom_hooks = []
        cfg.default_hooks.checkpoint = None
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.resume, cfg.load_from, cfg.launcher = False, None, 'none'
        return cfg

    # -------------------------------------------------------------- checks
    def check_fingerprint(self, fingerprint: str) -> None:
        """Refuse a task made from another config, naming the site."""
        if fingerprint != self.fingerprint:
            raise ValueError(
                f'{self.site.node} (data-root {self.site.data_root!r}): its '
                'config differs from the server\'s (fingerprint '
                f'{self.fingerprint[:12]} != {fingerprint[:12]}); run the '
                'same config file and decssl_mm version at every site.')

    def num_samples(self) -> int:
        """The site's training images (refuses a site without any)."""
        from decssl_mm.registry import DATASETS
        inner = copy.deepcopy(self.cfg.train_dataloader['dataset']['dataset'])
        inner['pipeline'] = []  # counted, not read
        inner['serialize_data'] = False  # (an empty list cannot be packed)
        try:
            n = len(DATASETS.build(inner))
        except (OSError, ValueError) as e:
            raise ValueError(
                f'{self.site.node}: cannot read the training images under '
                f'data-root {self.site.data_root!r}: {e}') from e
        if n == 0:
            raise ValueError(f'{self.site.node}: no training images under '
                             f'data-root {self.site.data_root!r}.')
        return n

    # --------------------------------------------------------------- state
    def _state_path(self, round_idx: int) -> str:
        return osp.join(self.site.state_dir, f'client_state_r{round_idx}.pth')

    def _saved_rounds(self) -> list:
        if not osp.isdir(self.site.state_dir):
            return []
        names = os.listdir(self.site.state_dir)
        return sorted(int(n[len('client_state_r'):-4]) for n in names
                      if n.startswith('client_state_r') and n.endswith('.pth'))

    def load_state(self, round_idx: int) -> Optional[dict]:
        """The local state of the site's last round before ``round_idx``
        (None before its first; a state of that round or later, left by a
        run that was not resumed, is not used)."""
        earlier = [r for r in self._saved_rounds() if r < round_idx]
        if not earlier:
            return None
        return torch.load(self._state_path(earlier[-1]), map_location='cpu',
                          weights_only=False)

    def save_state(self, state: Dict, round_idx: int) -> None:
        """Write the local state of a round atomically; keep the two newest
        (a server that resumes a round finds the state before it)."""
        os.makedirs(self.site.state_dir, exist_ok=True)
        path = self._state_path(round_idx)
        torch.save(state, path + '.tmp')
        os.replace(path + '.tmp', path)
        for r in self._saved_rounds()[:-2]:
            os.remove(self._state_path(r))

    # ----------------------------------------------------------------- fit
    def fit(self, task: ClientTask) -> ClientResult:
        """Train the task on the site's images; keep the local state.

        Args:
            task (ClientTask): The server's task (its ``client_id`` is
                this site's id).

        Returns:
            ClientResult: The trained model and metrics (its local state
            is already on the site's disk).
        """
        runner = Runner.from_cfg(copy.deepcopy(self.cfg))
        loop = SiteFitLoop(runner, runner.cfg.train_dataloader, task,
                           self.load_state(task.round_idx),
                           self.cfg.train_cfg)
        if self.clusters is not None:
            self.clusters.prepare(task, unwrap_model(runner.model),
                                  loop.dataloader.dataset)
        runner._train_loop = loop
        runner.train()
        result = loop.result
        if self.clusters is not None:
            self.clusters.keep_features(task, result)
        self.save_state(result.local_state, task.round_idx)
        return result

    # ------------------------------------------------------------- scoring
    def score(self, round_idx: int, seed: int, site_id: int,
              clusters: Dict[str, torch.Tensor]
              ) -> Tuple[Optional[List[float]], bool]:
        """Score the round-start cluster backbones on the site's images
        against its last local model's features (FeatARC across sites,
        :meth:`SiteClusters.scores`).

        Raises:
            ValueError: The config's server is not FeatARC's.
        """
        if self.clusters is None:
            raise ValueError(f'{self.site.node}: asked to score clusters, '
                             'but the config\'s train_cfg.server is not a '
                             'ClusteredServer.')
        runner = Runner.from_cfg(copy.deepcopy(self.cfg))
        from decssl_mm.registry import DATASETS
        dataset = DATASETS.build(
            copy.deepcopy(self.cfg.train_dataloader['dataset']))
        memo = (self.load_state(round_idx) or {}).get(
            self.clusters.server.memo_key)
        return self.clusters.scores(unwrap_model(runner.model), dataset,
                                    clusters, memo, seed, site_id)
