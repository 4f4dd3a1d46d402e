"""``type='FeatARCTrainLoop'``: FeatARC configs written before servers."""
from typing import Dict, Optional, Sequence, Union

from torch.utils.data import DataLoader

from decssl_mm.registry import LOOPS
from .loop import FederatedTrainLoop


@LOOPS.register_module(name='FeatARCTrainLoop')
def featarc_train_loop(runner,
                       dataloader: Union[DataLoader, Dict],
                       num_clusters: int = 2,
                       eval_pipeline: Optional[Sequence[dict]] = None,
                       feat_batch_size: int = 256,
                       assign_max_samples: Optional[int] = None,
                       export_rule: str = 'most_samples',
                       **kwargs) -> FederatedTrainLoop:
    """Build the federated loop with FeatARC's clustered server.

    ``train_cfg=dict(type='FeatARCTrainLoop', num_clusters=2, ...)`` is the
    same run as ``train_cfg=dict(type='FederatedTrainLoop',
    server=dict(type='ClusteredServer', num_clusters=2, ...))``, the form
    the packaged configs use; errors name the keys as written
    (``train_cfg.num_clusters``).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): ``train_dataloader``.
        num_clusters, eval_pipeline, feat_batch_size, assign_max_samples,
            export_rule: As :class:`~decssl_mm.federated.servers.
            ClusteredServer`.
        **kwargs: Other arguments of :class:`FederatedTrainLoop`.
    """
    if 'server' in kwargs:
        raise ValueError("train_cfg.server cannot be combined with "
                         "type='FeatARCTrainLoop'; use type="
                         "'FederatedTrainLoop' with server=dict(type="
                         "'ClusteredServer', ...).")
    server = dict(
        type='ClusteredServer',
        num_clusters=num_clusters,
        eval_pipeline=eval_pipeline,
        feat_batch_size=feat_batch_size,
        assign_max_samples=assign_max_samples,
        export_rule=export_rule,
        cfg_key='train_cfg')
    return FederatedTrainLoop(runner, dataloader, server=server, **kwargs)
