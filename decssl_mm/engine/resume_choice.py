"""Which checkpoint ``tools/train.py --resume`` resumes from.

mmengine resumes from the file named by ``<work_dir>/last_checkpoint``.
Before the run starts, that checkpoint is checked (its recorded SHA-256,
or without one the CRC of every member of the torch zip file). If it is
unreadable:

- ``--resume`` stops with a :class:`CorruptCheckpointError` that names it
  and the newest readable checkpoint of the work dir;
- ``--resume auto`` resumes from that newest readable checkpoint, with a
  WARNING.
"""
import logging
import os
import os.path as osp
import re
from typing import List, Optional

from mmengine.logging import print_log

from decssl_mm.utils.checksums import checksum_matches, zip_members_intact
from decssl_mm.utils.io import CorruptCheckpointError

__all__ = [
    'unreadable_reason', 'round_checkpoints', 'choose_resume_checkpoint'
]

#: Checkpoint file names of a run, newest = largest number.
_CKPT_RE = re.compile(r'^(?:epoch|iter)_(\d+)\.pth$')
POINTER_FILE = 'last_checkpoint'


def unreadable_reason(path: str) -> Optional[str]:
    """Why the checkpoint ``path`` cannot be resumed from, or None.

    Args:
        path (str): A checkpoint file.

    Returns:
        str | None: The reason, None when the file looks intact.
    """
    if not osp.isfile(path):
        return 'it does not exist or is not a file'
    matches = checksum_matches(path)
    if matches is not None:
        return None if matches else 'its SHA-256 differs from the one ' \
            'recorded when it was written'
    if not zip_members_intact(path):
        return 'it is no complete torch file or fails its CRC check'
    return None


def round_checkpoints(work_dir: str) -> List[str]:
    """The ``epoch_N.pth`` / ``iter_N.pth`` files of ``work_dir``, newest
    first."""
    if not osp.isdir(work_dir):
        return []
    found = []
    for name in os.listdir(work_dir):
        m = _CKPT_RE.match(name)
        if m is not None:
            found.append((int(m.group(1)), osp.join(work_dir, name)))
    return [p for _, p in sorted(found, reverse=True)]


def _pointer_target(work_dir: str) -> Optional[str]:
    pointer = osp.join(work_dir, POINTER_FILE)
    if osp.isdir(pointer):
        raise ValueError(f'{pointer} is a directory, not the pointer file '
                         'naming the last checkpoint; remove it or resume '
                         'from an explicit checkpoint (--resume PATH)')
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        target = f.read().strip()
    return target or None


def choose_resume_checkpoint(work_dir: str,
                             fallback: bool = False) -> Optional[str]:
    """The checkpoint to resume from, checked before the run starts.

    Args:
        work_dir (str): The run's work dir.
        fallback (bool): Resume from the newest readable checkpoint when the
            newest is unreadable (with a WARNING) instead of raising.
            Defaults to False.

    Returns:
        str | None: The checkpoint; None when the work dir has none (the
        run starts fresh, as mmengine does).

    Raises:
        CorruptCheckpointError: If the newest checkpoint is unreadable and
            ``fallback`` is off (or no checkpoint is readable); the message
            names it and the newest readable one.
    """
    newest = _pointer_target(work_dir)
    candidates = round_checkpoints(work_dir)
    if newest is None:
        if not candidates:
            return None
        newest = candidates[0]
    reason = unreadable_reason(newest)
    if reason is None:
        return newest
    older = [p for p in candidates
             if osp.abspath(p) != osp.abspath(newest)]
    readable = next((p for p in older if unreadable_reason(p) is None), None)
    if readable is not None and fallback:
        print_log(
            f'The newest checkpoint {newest} is unreadable ({reason}); '
            f'resuming from the newest readable one, {readable} '
            '(--resume auto).',
            logger='current',
            level=logging.WARNING)
        return readable
    hint = (f'the newest readable one is {readable}: resume from it with '
            f'--resume {readable} or --resume auto' if readable else
            'no other checkpoint of the work dir is readable')
    raise CorruptCheckpointError(
        f'Cannot resume from the newest checkpoint {newest}: {reason}; '
        f'{hint}.')
