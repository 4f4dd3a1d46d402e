"""Weights-only loading for every scheme of mmengine's CheckpointLoader.

mmengine resolves ``--resume``, ``load_from``,
``init_cfg=dict(type='Pretrained', checkpoint=...)`` and ``load_checkpoint``
through ``CheckpointLoader``, by the checkpoint's prefix. Its own loaders
call ``torch.load`` without ``weights_only`` (local files, ``pavi://``,
``s3://``) or ``torch.hub.load_state_dict_from_url`` whose ``weights_only``
defaults to False (``http(s)://``, ``torchvision://``, ``open-mmlab://``,
``mmcls://``): a pickle in the download cache runs code on load.

The loaders here are registered for every prefix mmengine knows (its
``register_scheme`` extension point, ``force=True``) on ``import
decssl_mm``. All of them end in :func:`decssl_mm.utils.io.safe_torch_load`
(or its in-memory twin): ``weights_only=True`` whatever the environment
says, and :class:`~decssl_mm.utils.io.CheckpointLoadError` naming the file
(and the URL) when a file is refused or unreadable. Downloads go to the
same cache as before (``$TORCH_HOME/hub/checkpoints``); a cached file is
used as is, and loaded weights-only like any other.
"""
import difflib
import os
import os.path as osp
import re
import sys
import warnings
from tempfile import TemporaryDirectory
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from decssl_mm.utils.io import (UnsafeCheckpointError, safe_torch_load,
                                safe_torch_load_bytes)

__all__ = [
    'SAFE_CHECKPOINT_LOADERS', 'register_safe_checkpoint_loaders',
    'hub_cached_file', 'load_from_local', 'load_from_http',
    'load_from_torchvision', 'load_from_openmmlab', 'load_from_mmcls',
    'load_from_ceph', 'load_from_pavi'
]


def _model_url(filename: str, name: str, urls: Dict[str, str]) -> str:
    """The URL of ``name`` in a model-zoo table, or a clear KeyError."""
    if name not in urls:
        close = difflib.get_close_matches(name, list(urls), n=3)
        hint = f' Did you mean {close}?' if close else ''
        raise KeyError(f'{filename}: no model named {name!r} in the model '
                       f'zoo of this scheme.{hint}')
    return urls[name]


def _scheme_name(filename: str) -> str:
    return filename.split('://', 1)[1]


def hub_cached_file(url: str,
                    model_dir: Optional[str] = None,
                    progress: bool = False) -> str:
    """The local copy of ``url`` in torch's hub cache, downloaded if absent.

    The cache is the one ``torch.hub.load_state_dict_from_url`` uses:
    ``<model_dir or $TORCH_HOME/hub/checkpoints>/<file name of the URL>``.

    Args:
        url (str): ``http://`` or ``https://`` URL of a file.
        model_dir (str, optional): Cache directory. Defaults to torch's.
        progress (bool): Show a download progress bar. Defaults to False.

    Returns:
        str: Path of the local copy.
    """
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'{url}: the URL does not name a file.')
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, name)
    if not osp.isfile(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        torch.hub.download_url_to_file(url, cached, progress=progress)
    return cached


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint file (prefix ``''``) weights-only.

    Args:
        filename (str): Path; ``~`` is expanded.
        map_location: As for ``torch.load``.

    Returns:
        The checkpoint.
    """
    return safe_torch_load(filename, map_location)


def load_from_http(filename: str,
                   map_location: Any = None,
                   model_dir: Optional[str] = None,
                   progress: bool = False) -> Any:
    """Load ``http(s)://`` checkpoints weights-only, through torch's cache.

    Under torch.distributed rank 0 downloads first, the others then use its
    copy (as mmengine does).

    Args:
        filename (str): The URL.
        map_location: As for ``torch.load``.
        model_dir (str, optional): Cache directory. Defaults to torch's.
        progress (bool): Show a download progress bar. Defaults to False.

    Returns:
        The checkpoint.
    """
    rank, world_size = get_dist_info()
    cached = None
    if rank == 0:
        cached = hub_cached_file(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = hub_cached_file(filename, model_dir, progress)
    return safe_torch_load(cached, map_location, source=filename)


def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
    """Load ``torchvision://NAME`` (or ``modelzoo://NAME``) weights-only.

    Args:
        filename (str): e.g. ``'torchvision://resnet50'``.
        map_location: As for ``torch.load``.

    Returns:
        The checkpoint.
    """
    url = _model_url(filename, _scheme_name(filename),
                     mm_checkpoint.get_torchvision_models())
    return load_from_http(url, map_location=map_location)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """Load ``open-mmlab://NAME`` (or ``openmmlab://NAME``) weights-only.

    Names resolve through mmengine's table (and ``open_mmlab.json`` in
    ``$MMENGINE_HOME``) to a URL or to a file under ``$MMENGINE_HOME``.

    Args:
        filename (str): e.g. ``'open-mmlab://resnet50_caffe'``.
        map_location: As for ``torch.load``.

    Returns:
        The checkpoint.
    """
    name = _scheme_name(filename)
    deprecated = mm_checkpoint.get_deprecated_model_names()
    if name in deprecated:
        warnings.warn(f'{filename} is deprecated in favor of '
                      f'{deprecated[name]}', DeprecationWarning)
        name = deprecated[name]
    url = _model_url(filename, name, mm_checkpoint.get_external_models())
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    local = osp.join(mm_checkpoint._get_mmengine_home(), url)
    return safe_torch_load(local, map_location, source=filename)


def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
    """Load ``mmcls://NAME`` weights-only; keys renamed as mmengine does.

    Args:
        filename (str): e.g. ``'mmcls://resnet50'``.
        map_location: As for ``torch.load``.

    Returns:
        dict: ``dict(state_dict=...)`` of the backbone.
    """
    url = _model_url(filename, _scheme_name(filename),
                     mm_checkpoint.get_mmcls_models())
    checkpoint = load_from_http(url, map_location=map_location)
    return mm_checkpoint._process_mmcls_checkpoint(checkpoint)


def load_from_ceph(filename: str,
                   map_location: Any = None,
                   backend: str = 'petrel') -> Any:
    """Load ``s3://`` / ``petrel://`` checkpoints weights-only.

    Args:
        filename (str): The object's URI.
        map_location: As for ``torch.load``.
        backend (str): mmengine file backend. Defaults to ``'petrel'``.

    Returns:
        The checkpoint.
    """
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    return safe_torch_load_bytes(
        file_backend.get(filename), filename, map_location)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    """Load ``pavi://`` checkpoints (needs ``pavi``) weights-only.

    Args:
        filename (str): ``pavi://<model path>``.
        map_location: As for ``torch.load``.

    Returns:
        The checkpoint.
    """
    try:
        from pavi import modelcloud
    except ImportError as e:
        raise ImportError(f'{filename}: loading pavi:// checkpoints needs '
                          'the pavi package.') from e
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, osp.basename(model.name))
        model.download(downloaded)
        return safe_torch_load(downloaded, map_location, source=filename)


#: Every prefix mmengine 0.10's CheckpointLoader knows, and its loader here.
SAFE_CHECKPOINT_LOADERS: Dict[str, Callable] = {
    '': load_from_local,
    'http://': load_from_http,
    'https://': load_from_http,
    'modelzoo://': load_from_torchvision,
    'torchvision://': load_from_torchvision,
    'open-mmlab://': load_from_openmmlab,
    'openmmlab://': load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    'pavi://': load_from_pavi,
    r'(\S+\:)?s3://': load_from_ceph,
    r'(\S+\:)?petrel://': load_from_ceph,
}


def _refusing_loader(prefix: str) -> Callable:
    """A loader that refuses a prefix with no weights-only loader here."""

    def load_from_unverified_scheme(filename: str,
                                    map_location: Any = None) -> Any:
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename}: its scheme '
            f'{prefix!r} has no weights-only loader in decssl_mm, and '
            "mmengine's would unpickle it with code execution allowed. "
            'Download the file and give its local path.')

    return load_from_unverified_scheme


def register_safe_checkpoint_loaders() -> None:
    """Route every prefix of ``CheckpointLoader`` to a weights-only loader.

    The prefixes of :data:`SAFE_CHECKPOINT_LOADERS` get their loader; any
    other prefix already registered (by another library) is refused with a
    clear error. Idempotent.
    """
    for prefix, loader in SAFE_CHECKPOINT_LOADERS.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)
    safe = set(SAFE_CHECKPOINT_LOADERS.values())
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if loader not in safe and \
                loader.__name__ != 'load_from_unverified_scheme':
            CheckpointLoader.register_scheme(
                prefix, _refusing_loader(prefix), force=True)
    if not getattr(CheckpointLoader._get_checkpoint_loader, '_decssl_checked',
                   False):
        CheckpointLoader._get_checkpoint_loader = classmethod(
            _checked_get_checkpoint_loader)


def _checked_get_checkpoint_loader(cls, path: str) -> Callable:
    """mmengine's prefix lookup, refusing at load time any loader that is
    not weights-only (e.g. a scheme registered after ``import decssl_mm``).
    """
    safe = set(SAFE_CHECKPOINT_LOADERS.values())
    for prefix, loader in cls._schemes.items():
        if re.match(prefix, path) is not None:
            if loader in safe or \
                    loader.__name__ == 'load_from_unverified_scheme':
                return loader
            return _refusing_loader(prefix)
    return None


_checked_get_checkpoint_loader._decssl_checked = True

register_safe_checkpoint_loaders()
