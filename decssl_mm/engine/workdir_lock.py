"""One run per work dir: an exclusive lock file naming its holder.

A run writes ``<work_dir>/.decssl_run.lock`` (created exclusively) with its
pid, host, process start time and a random token, and removes it at exit.
A second run finding the lock held by a live process stops with
:class:`WorkDirLockedError` before it touches anything. A lock left by a
crashed run (its pid is gone on this host, or now belongs to another
process) is stale: it is taken over with a WARNING. A lock held from
another host cannot be checked and is refused; the message says how to
remove it.

Only the main process of a run (rank 0) takes the lock; the other ranks of
the same launch share it.
"""
import atexit
import errno
import fcntl
import json
import logging
import os
import os.path as osp
import secrets
import socket
import time
from typing import Optional

from mmengine.logging import print_log

__all__ = [
    'LOCK_NAME', 'WorkDirLockedError', 'acquire_work_dir_lock',
    'release_work_dir_lock', 'held_lock'
]

#: Name of the lock file inside the work dir.
LOCK_NAME = '.decssl_run.lock'

#: Locks held by this process: absolute work dir -> token.
_HELD = {}


class WorkDirLockedError(RuntimeError):
    """Another live run holds the work dir."""


def _proc_stat(pid: int) -> Optional[list]:
    """Fields 3.. of ``/proc/<pid>/stat`` (Linux), or None if unknown."""
    try:
        with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after it are plain
    return stat.rsplit(')', 1)[-1].split()


def _process_start(pid: int) -> Optional[str]:
    """Start time of ``pid`` in clock ticks (Linux), or None if unknown."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    fields = _proc_stat(pid)
    return not (fields and fields[0] in ('Z', 'X'))


def _is_main_process() -> bool:
    try:
        from mmengine.dist import get_rank, is_distributed
        if is_distributed():
            return get_rank() == 0
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get('RANK', '0')) == 0


def _read(path: str) -> Optional[dict]:
    try:
        with open(path, encoding='utf-8') as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(info: dict) -> str:
    started = info.get('time')
    when = (time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))
            if isinstance(started, (int, float)) else 'an unknown time')
    return (f'pid {info.get("pid")} on host {info.get("host")!r}, '
            f'started {when}')


def _stale_reason(info: Optional[dict]) -> Optional[str]:
    """Why the lock described by ``info`` is stale, or None if it is held.

    Raises:
        WorkDirLockedError: If the holder runs on another host (its
            liveness cannot be checked from here).
    """
    if info is None or not isinstance(info.get('pid'), int):
        return 'the lock file is empty or unreadable (a crash while it was ' \
               'written)'
    if info.get('host') != socket.gethostname():
        return None
    pid = info['pid']
    if not _pid_alive(pid):
        return f'process {pid} no longer exists'
    start = _process_start(pid)
    if start is not None and info.get('start') not in (None, start):
        return f'pid {pid} now belongs to another process'
    return None


def _write_new(path: str, token: str) -> bool:
    """Create the lock file exclusively; False if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    info = dict(
        pid=os.getpid(),
        host=socket.gethostname(),
        start=_process_start(os.getpid()),
        time=time.time(),
        token=token)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(info, f)
        f.flush()
        os.fsync(f.fileno())
    return True


def _refuse(work_dir: str, path: str, info: dict) -> WorkDirLockedError:
    remote = info.get('host') != socket.gethostname()
    hint = (f'if that run is dead, delete {path} and start again'
            if remote else 'wait for it to end, stop it, or choose another '
            'work dir (--work-dir)')
    return WorkDirLockedError(
        f'work dir {work_dir!r} is in use by another run '
        f'({_describe(info)}; lock file {path}): two runs in one work dir '
        f'corrupt each other; {hint}')


def _take_over_or_refuse(work_dir: str, path: str) -> None:
    """With the guard held: remove a stale lock or raise if it is held."""
    info = _read(path)
    if info is not None and info.get('host') != socket.gethostname() \
            and isinstance(info.get('pid'), int):
        raise _refuse(work_dir, path, info)
    reason = _stale_reason(info)
    if reason is None:
        raise _refuse(work_dir, path, info)
    what = _describe(info) if info else 'an unknown run'
    print_log(
        f'Taking over the stale lock of work dir {work_dir!r} left by '
        f'{what}: {reason}.',
        logger='current',
        level=logging.WARNING)
    os.remove(path)


def acquire_work_dir_lock(work_dir: str) -> Optional[str]:
    """Hold ``work_dir`` for this run, or raise if another run holds it.

    Re-entrant: a process that already holds the lock gets it again. On
    ranks other than 0 nothing is done. The lock is released when the
    process exits (see :func:`release_work_dir_lock`).

    Args:
        work_dir (str): The run's work dir; created if missing.

    Returns:
        str | None: Path of the lock file, None on ranks other than 0.

    Raises:
        WorkDirLockedError: If a live run holds the work dir.
    """
    if not _is_main_process():
        return None
    root = osp.abspath(work_dir)
    path = osp.join(root, LOCK_NAME)
    if root in _HELD and (_read(path) or {}).get('token') == _HELD[root]:
        return path
    os.makedirs(root, exist_ok=True)
    token = secrets.token_hex(16)
    guard = os.open(root, os.O_RDONLY)  # serializes takers of a stale lock
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not _write_new(path, token):
            _take_over_or_refuse(root, path)
            if not _write_new(path, token):
                raise _refuse(root, path, _read(path) or {})
    finally:
        os.close(guard)
    if not _HELD:
        atexit.register(_release_all)
    _HELD[root] = token
    return path


def release_work_dir_lock(work_dir: str) -> None:
    """Remove the lock of ``work_dir`` if this process holds it.

    Args:
        work_dir (str): The work dir given to :func:`acquire_work_dir_lock`.
    """
    root = osp.abspath(work_dir)
    token = _HELD.pop(root, None)
    if token is None:
        return
    path = osp.join(root, LOCK_NAME)
    if (_read(path) or {}).get('token') == token:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def held_lock(work_dir: str) -> bool:
    """Whether this process holds the lock of ``work_dir``."""
    return osp.abspath(work_dir) in _HELD


def _release_all() -> None:
    for root in list(_HELD):
        release_work_dir_lock(root)
