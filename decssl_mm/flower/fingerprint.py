"""One fingerprint of a config, the same wherever it is read."""
import hashlib
import json

from mmengine.config import Config

#: Config entries a site or the server may set for itself: they do not
#: change what is trained (paths, workers, logging, evaluation hooks).
LOCAL_KEYS = ('work_dir', 'data_root', 'custom_hooks', 'default_hooks',
              'log_level', 'visualizer', 'vis_backends', 'env_cfg',
              'launcher', 'resume', 'load_from', 'experiment_name',
              'log_processor', 'knn_pipeline', 'filename')
#: Keys of ``train_dataloader`` a site may set for itself.
LOCAL_LOADER_KEYS = ('num_workers', 'persistent_workers', 'pin_memory',
                     'prefetch_factor', 'timeout')


def _strip_data_roots(node) -> None:
    if isinstance(node, dict):
        for key in ('data_root', 'data_prefix', 'ann_file'):
            node.pop(key, None)
        for value in node.values():
            _strip_data_roots(value)
    elif isinstance(node, list):
        for value in node:
            _strip_data_roots(value)


def config_fingerprint(cfg: Config) -> str:
    """A SHA-256 of what a config trains: model, data pipeline, optimizer,
    schedule, federated settings.

    Entries each machine sets for itself (:data:`LOCAL_KEYS`, the
    loader's worker settings, the datasets' paths) are left out, so a site
    whose images live elsewhere has the same fingerprint.

    Args:
        cfg (Config): The config.

    Returns:
        str: The hex digest.
    """
    plain = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    for key in LOCAL_KEYS:
        plain.pop(key, None)
    loader = plain.get('train_dataloader')
    if isinstance(loader, dict):
        for key in LOCAL_LOADER_KEYS:
            loader.pop(key, None)
    _strip_data_roots(plain)
    text = json.dumps(plain, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
