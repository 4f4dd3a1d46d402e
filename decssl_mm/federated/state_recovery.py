"""What a run does with a client-state file it cannot load.

Any unreadable state file (missing, truncated, bit-rotted, checksum
mismatch, or holding code) costs its client its local state, not its
rounds: the client restarts from the server's model with fresh local
state, and the next state it writes replaces the file. The reason is
logged once per file at WARNING; a file that holds code is named as such
(it was refused, and nothing in it ran).
"""
import logging
from typing import Set

from mmengine.logging import print_log

from decssl_mm.utils.io import UnsafeCheckpointError

__all__ = ['warn_unreadable_state']


def warn_unreadable_state(client_id: int, path: str, error: Exception,
                          warned: Set[str]) -> None:
    """Log once per file why a client's state is dropped.

    Args:
        client_id (int): The client.
        path (str): Its state file.
        error (Exception): Why the file could not be loaded.
        warned (set[str]): Files already reported (updated in place).
    """
    if path in warned:
        return
    warned.add(path)
    if isinstance(error, UnsafeCheckpointError):
        what = ('holds code and was refused (nothing in it ran; the file '
                'may have been tampered with)')
    else:
        what = 'cannot be read'
    print_log(
        f'Client {client_id}: its state file {path} {what} '
        f'({type(error).__name__}: {error}); the client restarts from the '
        'server model with fresh local state.',
        logger='current',
        level=logging.WARNING)
