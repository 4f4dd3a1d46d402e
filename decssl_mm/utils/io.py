"""Crash-safe writing and code-free reading of files."""
import os
import os.path as osp
import pickle
import tempfile
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``.

    A reader never sees a half-written file, whatever moment the process is
    killed at.

    Args:
        obj: What to save (plain tensors, numbers, strings, containers).
        path (str): Destination.
    """
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.' + osp.basename(path),
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def safe_torch_load(path: str, map_location: Any = 'cpu') -> Any:
    """Load a file with ``weights_only=True``: no code runs while loading.

    Args:
        path (str): File to read.
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file holds anything but plain tensors and
            containers (e.g. a pickled callable), naming the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'No such file: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f'Refusing to load {path}: it holds objects other than tensors '
            f'and plain containers ({e}).') from e
    except Exception as e:  # truncated or not a torch file
        raise ValueError(f'Cannot read {path}: not a complete torch file '
                         f'({type(e).__name__}: {e}).') from e
