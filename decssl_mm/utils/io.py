"""Crash-safe writing and code-free reading of files: the one place.

Writing: :func:`atomic_write` is the single implementation of "temporary
file in the destination directory, ``fsync``, rename over the destination,
``fsync`` of the directory"; :func:`atomic_write_text` and
:func:`atomic_torch_save` (and through them checkpoints, the
``last_checkpoint`` pointer, client states, partitions and exported
backbones) call it. A reader sees the old file or the new one, never a torn
one; a full disk raises an ``OSError`` naming the file and leaves the old
file in place.

Reading: :func:`safe_torch_load` and :func:`safe_torch_load_bytes` unpickle
with ``torch.load(weights_only=True)`` whatever the environment says, and
raise :class:`CheckpointLoadError` naming the file when it is refused or
unreadable.
"""
import contextlib
import errno
import glob
import io
import os
import os.path as osp
import pickle
import tempfile
from typing import IO, Any, Callable, Iterator, Optional, Union

import torch

from .checksums import (checksum_matches, checksum_path, drop_checksum,
                        sha256_file, zip_members_intact)

__all__ = [
    'CheckpointLoadError', 'UnsafeCheckpointError', 'CorruptCheckpointError',
    'atomic_write', 'atomic_write_text', 'atomic_torch_save', 'fsync_dir',
    'write_checksum',
    'remove_stale_temps', 'no_space_left_as_oserror', 'safe_torch_load',
    'safe_torch_load_bytes'
]


# ------------------------------------------------------------------ errors
class CheckpointLoadError(ValueError):
    """A checkpoint (or any torch file) could not be loaded safely.

    The one exception type of decssl_mm's loaders; the message names the
    file. Two kinds derive from it: :class:`UnsafeCheckpointError` (the file
    holds something that could run code, and was refused) and
    :class:`CorruptCheckpointError` (truncated, corrupt or not a torch file).
    """


class UnsafeCheckpointError(CheckpointLoadError, pickle.UnpicklingError):
    """The file holds a pickled callable or class and was not unpickled."""


class CorruptCheckpointError(CheckpointLoadError, RuntimeError):
    """The file is truncated, corrupt or not a torch file."""


# ----------------------------------------------------------------- writing
#: errno values that mean "the device or the quota is full".
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: How a full-disk error naming its file begins.
_NAMED_NO_SPACE = 'no space left writing'
#: What torch's file writer says when a write comes back short.
_TORCH_SHORT_WRITE = ('unexpected pos', 'PytorchStreamWriter failed writing')


def _is_no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE_ERRNOS
    if isinstance(exc, RuntimeError):
        text = str(exc)
        return any(s in text for s in _TORCH_SHORT_WRITE)
    return False


@contextlib.contextmanager
def no_space_left_as_oserror(path: str) -> Iterator[None]:
    """Turn a full-disk failure while writing ``path`` into a clear error.

    An ``OSError`` with ``ENOSPC``/``EDQUOT`` (which does not name the file)
    and torch's ``[enforce fail at inline_container.cc] unexpected pos``
    (what ``torch.save`` raises when the disk fills up) become
    ``OSError(ENOSPC, 'no space left writing <path> ...')``.

    Args:
        path (str): The file being written.

    Raises:
        OSError: With ``errno.ENOSPC`` and a message naming ``path``.
    """
    try:
        yield
    except (OSError, RuntimeError) as e:
        if not _is_no_space(e) or _NAMED_NO_SPACE in str(e):
            raise  # not a full disk, or already named (nested writers)
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise OSError(
            errno.ENOSPC,
            f'{_NAMED_NO_SPACE} {path} (free space on its device or '
            f'raise the quota; the previous file is unchanged) [{detail}]'
        ) from e


def fsync_dir(path: str) -> None:
    """Flush a directory entry (a rename) to disk; no-op where unsupported.

    Args:
        path (str): The directory.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: str) -> str:
    return '.' + osp.basename(path)


def remove_stale_temps(path: str) -> int:
    """Delete temporary files that killed writers of ``path`` left behind.

    Symbolic links with such names are removed, never followed.

    Args:
        path (str): The destination file whose temporaries to remove.

    Returns:
        int: Number of files removed.
    """
    d = osp.dirname(osp.abspath(path))
    pattern = glob.escape(_temp_prefix(path)) + '*.tmp'
    removed = 0
    for tmp in glob.glob(osp.join(glob.escape(d), pattern)):
        if osp.isdir(tmp) and not osp.islink(tmp):
            continue
        try:
            os.remove(tmp)
            removed += 1
        except FileNotFoundError:  # pragma: no cover - concurrent cleanup
            pass
    return removed


_UMASK: Optional[int] = None


def _file_mode() -> int:
    """``0o666`` less the process umask: what ``open(path, 'w')`` gives."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def atomic_write(path: str, write_fn: Callable[[IO[bytes]], Any]) -> None:
    """Write a file so that readers see either the old or the new content.

    ``write_fn`` writes into a new temporary file in the same directory
    (created with ``tempfile.mkstemp``: unpredictable name, ``O_EXCL``, never
    a symlink followed), which is flushed, ``fsync``-ed and renamed over
    ``path``; then the directory is ``fsync``-ed. On any failure the
    temporary file is removed and ``path`` is untouched.

    Args:
        path (str): Destination; parent directories are created.
        write_fn (Callable[[IO[bytes]], Any]): Writes the content into the
            binary file object it is given.

    Raises:
        OSError: ``errno.ENOSPC`` with a message naming ``path`` when the
            disk or quota is full; other errors of ``write_fn`` as raised.
    """
    path = osp.abspath(osp.expanduser(path))
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with no_space_left_as_oserror(path):
        fd, tmp = tempfile.mkstemp(
            dir=directory, prefix=_temp_prefix(path), suffix='.tmp')
        try:
            os.fchmod(fd, _file_mode())
            with os.fdopen(fd, 'wb') as f:
                write_fn(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise
    fsync_dir(directory)


def atomic_write_text(text: str, path: str) -> None:
    """Write a UTF-8 text file atomically (see :func:`atomic_write`).

    Args:
        text (str): The content.
        path (str): The destination.
    """
    data = text.encode('utf-8')
    atomic_write(path, lambda f: f.write(data))


def write_checksum(path: str, digest: Optional[str] = None) -> None:
    """Record the digest of ``path`` in its sidecar, atomically.

    Args:
        path (str): The file just written.
        digest (str, optional): Its digest if already known (hashing the
            bytes before writing saves reading the file back). Defaults to
            None: the file is read and hashed.
    """
    if digest is None:
        digest = sha256_file(path)
    atomic_write_text(f'{digest}  {osp.basename(path)}\n',
                      checksum_path(path))


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` into ``path`` atomically (see :func:`atomic_write`).

    Args:
        obj: What to save (plain tensors, numbers, strings, containers).
        path (str): Destination.
    """
    drop_checksum(path)  # a sidecar never names other content
    atomic_write(path, lambda f: torch.save(obj, f))
    write_checksum(path)


# ----------------------------------------------------------------- reading
def _unpickling_reason(e: Exception) -> str:
    """The informative line of torch's weights-only error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if 'GLOBAL' in ln or 'Unsupported' in ln or 'unsupported' in ln:
            return ln
    return lines[-1] if lines else type(e).__name__


def _load(source: Union[str, IO[bytes]], name: str, map_location: Any) -> Any:
    try:
        return torch.load(
            source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {name}: it holds objects other '
            'than tensors, numbers, strings and containers (e.g. a pickled '
            'function or class), and loading it could run code. Only '
            'checkpoints written by this project (or other plain state '
            f'dicts) are accepted. ({_unpickling_reason(e)})') from e
    except Exception as e:  # truncated, corrupt, not a torch file
        raise CorruptCheckpointError(
            f'Cannot read checkpoint {name}: the file is truncated or '
            f'corrupt ({type(e).__name__}: {e}).') from e


def safe_torch_load(path: str,
                    map_location: Any = 'cpu',
                    source: Optional[str] = None) -> Any:
    """Load a torch file with ``weights_only=True``: no code runs.

    Always weights-only, also when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is
    set. mmengine checkpoints load because ``decssl_mm.compat`` allowlists
    the data types they hold.

    Args:
        path (str): File to read (``~`` is expanded).
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.
        source (str, optional): Where the file came from (e.g. the URL it
            was downloaded from), named in error messages besides ``path``.

    Returns:
        The unpickled object.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        UnsafeCheckpointError: If the file holds anything but tensors,
            numbers, strings, containers and the allowlisted types (e.g. a
            pickled callable); a :class:`CheckpointLoadError`.
        CorruptCheckpointError: If the file is truncated or not a torch
            file; a :class:`CheckpointLoadError`.
    """
    path = osp.expanduser(path)
    name = path if source is None else f'{source} (local copy {path})'
    if not osp.isfile(path):
        raise FileNotFoundError(f'{name} can not be found.')
    return _load_verified(path, name, map_location)


def _load_verified(path: str, name: str, map_location: Any) -> Any:
    """:func:`_load`, then the file compared with its recorded digest.

    Loading first keeps "holds code" the verdict of a replaced file that
    holds code (it is never executed: the load is weights-only); any other
    file whose digest differs is corrupt, whether or not it unpickles.
    """
    matches = checksum_matches(path)
    try:
        obj = _load(path, name, map_location)
    except UnsafeCheckpointError as e:
        reason = _unpickling_reason(e.__cause__ or e)
        damaged = matches is False or not zip_members_intact(path)
        if damaged and 'global' not in reason.lower():  # garbage, not code
            raise CorruptCheckpointError(
                f'Cannot read checkpoint {name}: it was damaged after it '
                'was written (checksum or CRC mismatch: bit rot or a '
                f'damaged copy; {reason}).') from e
        if matches is False:
            raise UnsafeCheckpointError(
                f'{e} It differs from the file written by this project '
                '(checksum mismatch): it was replaced.') from e
        raise
    except CorruptCheckpointError as e:
        if matches is False:
            raise CorruptCheckpointError(
                f'{e} Its checksum differs from the one recorded when it '
                'was written (bit rot or a damaged copy).') from e
        raise
    if matches is False:
        raise CorruptCheckpointError(
            f'Cannot trust checkpoint {name}: its SHA-256 differs from the '
            f'one recorded in {checksum_path(path)} when it was written '
            '(bit rot or a damaged copy).')
    return obj


def safe_torch_load_bytes(data: bytes, name: str,
                          map_location: Any = 'cpu') -> Any:
    """:func:`safe_torch_load` for content already in memory.

    Args:
        data (bytes): The file content.
        name (str): Where it came from (a URL), for error messages.
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        The unpickled object.

    Raises:
        CheckpointLoadError: As :func:`safe_torch_load`.
    """
    with io.BytesIO(data) as buffer:
        return _load(buffer, name, map_location)
