"""SHA-256 sidecar files: corruption told apart from tampering.

When a client-state file or a checkpoint is written, its digest is written
beside it as ``<file>.sha256`` (``"<hex digest>  <file name>\\n"``, the
``sha256sum`` format). When it is read, a recorded digest that differs from
the file's means the file changed after it was written: bit rot, a torn
copy, or a replaced file. A file without a sidecar (written by an older
version, or a crash between the file and its sidecar) is read unchecked.

The sidecar of a file is removed before the file is rewritten and when it
is deleted, so at every instant a sidecar names the content beside it or
nothing.
"""
import contextlib
import hashlib
import os
import os.path as osp
from typing import Optional

__all__ = [
    'SUFFIX', 'checksum_path', 'sha256_file', 'sha256_bytes',
    'read_checksum', 'drop_checksum', 'checksum_matches',
    'zip_members_intact'
]

#: Suffix of a sidecar file.
SUFFIX = '.sha256'
#: Bytes read at a time while hashing a file.
_CHUNK = 1 << 20


def checksum_path(path: str) -> str:
    """The sidecar of ``path``."""
    return str(path) + SUFFIX


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    """Hex SHA-256 digest of the file ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def read_checksum(path: str) -> Optional[str]:
    """The digest recorded for ``path``, or None without a usable sidecar."""
    try:
        with open(checksum_path(path), encoding='ascii') as f:
            text = f.read(200)
    except (OSError, UnicodeDecodeError):
        return None
    fields = text.split()
    if not fields or len(fields[0]) != 64:
        return None
    return fields[0].lower()


def drop_checksum(path: str) -> None:
    """Remove the sidecar of ``path`` (no error if there is none)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(checksum_path(path))


def checksum_matches(path: str) -> Optional[bool]:
    """Compare ``path`` with its recorded digest.

    Args:
        path (str): The file.

    Returns:
        bool | None: None when no digest is recorded, else whether the
        file's digest equals it.
    """
    recorded = read_checksum(path)
    if recorded is None:
        return None
    return sha256_file(path) == recorded


def zip_members_intact(path: str) -> bool:
    """Whether every member of a zip file (torch's format) passes its CRC.

    Torch files record a CRC-32 of each member: a file without a sidecar is
    still checked for corruption this way.

    Args:
        path (str): The file.

    Returns:
        bool: False when the file is no complete zip file or a member's
        CRC differs.
    """
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False
