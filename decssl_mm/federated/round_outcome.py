"""What a round did, gathered over ranks, and what it cost to communicate."""
from typing import Dict, List, NamedTuple

from .dist_utils import all_gather_objects


class RoundOutcome(NamedTuple):
    """The round's clients over every rank.

    Args:
        ok (list[int]): Clients whose update was aggregated.
        failed (list[int]): Clients dropped from the round.
        written (dict[int, int]): ``client -> round`` of new local states.
        errors (dict[int, str]): Last error of every failed client.
    """
    ok: List[int]
    failed: List[int]
    written: Dict[int, int]
    errors: Dict[int, str]


def gather_outcome(ok: List[int], failed: List[int], written: Dict[int, int],
                   errors: Dict[int, str]) -> RoundOutcome:
    """Merge every rank's part of the round (a collective call)."""
    gathered = all_gather_objects((ok, failed, written, errors))
    out = RoundOutcome([], [], {}, {})
    for g_ok, g_failed, g_written, g_errors in gathered:
        out.ok.extend(g_ok)
        out.failed.extend(g_failed)
        out.written.update(g_written)
        out.errors.update(g_errors)
    return out


def raise_if_all_failed(round_idx: int, outcome: RoundOutcome) -> None:
    """A round in which every participant failed stops the run."""
    if not outcome.failed or outcome.ok:
        return
    shown = '; '.join(f'client {k}: {outcome.errors.get(k, "?")[:300]}'
                      for k in sorted(outcome.failed)[:3])
    raise RuntimeError(
        f'Round {round_idx}: every participating client failed '
        f'({sorted(outcome.failed)}); stopping. The last checkpoint '
        f'is intact (resume with --resume). Errors: {shown}')


class CommMeter:
    """Bytes exchanged per round and in total (model up and down)."""

    def __init__(self) -> None:
        self.total = 0

    def count(self, exchanged_bytes: int, num_participants: int,
              outcome: RoundOutcome, extra_bytes: int = 0
              ) -> Dict[str, float]:
        """Count a round; return its ``comm/*`` and ``federated/*`` scalars.

        Args:
            exchanged_bytes (int): One model, one way.
            num_participants (int): Clients that downloaded the model.
            outcome (RoundOutcome): Clients that uploaded (``ok``).
            extra_bytes (int): Other traffic (e.g. FeatARC's scoring).
        """
        down = exchanged_bytes * num_participants
        up = exchanged_bytes * len(outcome.ok)
        self.total += down + up + int(extra_bytes)
        return {
            'comm/bytes_down': float(down),
            'comm/bytes_up': float(up),
            'comm/bytes_total': float(self.total),
            'federated/clients_ok': float(len(outcome.ok)),
            'federated/clients_failed': float(len(outcome.failed)),
        }
