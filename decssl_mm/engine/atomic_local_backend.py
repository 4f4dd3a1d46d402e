"""A local file backend whose writes are atomic."""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from decssl_mm.utils.checksums import drop_checksum, sha256_bytes
from decssl_mm.utils.io import (atomic_write, remove_stale_temps,
                                write_checksum)

#: The name under which :class:`AtomicLocalBackend` is registered.
ATOMIC_LOCAL_BACKEND = 'atomic_local'


@register_backend(ATOMIC_LOCAL_BACKEND, force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` with crash-safe ``put`` and ``put_text``.

    mmengine's local backend opens the destination and writes into it, so a
    process killed mid-write (or a full disk) leaves a torn file under the
    final name. Here the content goes through
    :func:`decssl_mm.utils.io.atomic_write`: a temporary file in the same
    directory, ``fsync``, rename over the destination. Readers see the old
    file or the new one; on a full disk an ``OSError`` names the file and
    the old file stays. Temporary files of an earlier killed write of the
    same destination are removed first. Reading, listing and removing are
    mmengine's.

    Select it with ``backend_args=dict(backend='atomic_local')``;
    :class:`~decssl_mm.engine.hooks.AtomicCheckpointHook` does so for local
    checkpoint directories.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically.

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Destination; parent directories are
                created.
        """
        filepath = str(filepath)
        remove_stale_temps(filepath)
        drop_checksum(filepath)  # a sidecar never names other content
        atomic_write(filepath, lambda f: f.write(obj))
        write_checksum(filepath, sha256_bytes(obj))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically.

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Destination; parent directories are
                created.
            encoding (str): Encoding of the text. Defaults to 'utf-8'.
        """
        self.put(obj.encode(encoding), filepath)

    def remove(self, filepath: Union[str, Path]) -> None:
        """Remove a file and its checksum sidecar.

        Args:
            filepath (str | Path): The file to remove.
        """
        super().remove(filepath)
        drop_checksum(str(filepath))
