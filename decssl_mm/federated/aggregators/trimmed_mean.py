"""Coordinate-wise trimmed mean of the clients' updates."""
import logging
import math
from numbers import Real
from typing import Optional, Sequence

import torch
from mmengine.logging import print_log

from decssl_mm.registry import AGGREGATORS
from .base_aggregator import DEFAULT_LOCAL_PATTERNS
from .buffered_aggregator import BufferedAggregator

_KEY = 'train_cfg.aggregator.trim_ratio'


@AGGREGATORS.register_module()
class TrimmedMean(BufferedAggregator):
    """Per coordinate, drop the largest and smallest values, average the rest.

    From "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
    Rates" (Yin et al., 2018). With ``m`` clients in the round,
    ``t = floor(trim_ratio * m)`` values are dropped at each end of every
    coordinate (at most ``(m - 1) // 2``, so one value always remains) and
    the remaining ``m - 2t`` are averaged (uniformly: client sample counts
    are self-reported and not used; ``weighting`` is ignored). Up to ``t``
    malicious clients cannot move a coordinate outside the range of the
    honest values. Integer tensors (``num_batches_tracked``) take the same
    trimmed mean, rounded down; export-only BatchNorm statistics too.

    With few clients ``t`` is 0 and the result is the plain mean: a
    configuration whose full round trims nothing is refused by
    :meth:`check_clients_per_round` unless ``allow_no_trim=True``, and a
    round left with too few clients to trim (failed clients) logs a
    warning.

    Keeps every update of the round: see :class:`BufferedAggregator` for the
    memory cost and the ``buffer``/``buffer_dir``/``chunk_size`` arguments.

    Args:
        trim_ratio (float): Fraction dropped at *each* end, in [0, 0.5).
            Defaults to 0.2.
        allow_no_trim (bool): Accept a number of clients per round that
            trims nothing (the plain mean). Defaults to False.
        **kwargs: See :class:`BufferedAggregator`.
    """

    def __init__(self,
                 trim_ratio: float = 0.2,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True,
                 buffer: str = 'memory',
                 buffer_dir: Optional[str] = None,
                 chunk_size: int = 2**18,
                 allow_no_trim: bool = False) -> None:
        super().__init__(include, exclude, weighting, check_finite, buffer,
                         buffer_dir, chunk_size)
        if isinstance(trim_ratio, bool) or not isinstance(trim_ratio, Real) \
                or not 0 <= trim_ratio < 0.5:
            raise ValueError(f'{_KEY} must be a number in [0, 0.5), got '
                             f'{trim_ratio!r}.')
        self.trim_ratio = float(trim_ratio)
        self.allow_no_trim = bool(allow_no_trim)
        self._clients_per_round: Optional[int] = None

    def _raw_trimmed(self, m: int) -> int:
        """``floor(trim_ratio * m)``, tolerant of float rounding."""
        return int(math.floor(self.trim_ratio * m + 1e-9))

    def num_trimmed(self, m: int) -> int:
        """Values dropped at each end of a coordinate with ``m`` clients."""
        return max(0, min(self._raw_trimmed(m), (m - 1) // 2))

    def check_clients_per_round(self, m: int) -> None:
        """Refuse a round size that trims nothing or keeps no value.

        Args:
            m (int): Clients sampled per round.

        Raises:
            ValueError: Naming ``train_cfg.aggregator.trim_ratio`` and ``m``
                when a full round would keep no value, or would trim
                nothing (unless ``allow_no_trim``).
        """
        if isinstance(m, bool) or int(m) != m or m < 1:
            raise ValueError('TrimmedMean: clients per round must be a '
                             f'positive integer, got {m!r}.')
        m = int(m)
        t = self._raw_trimmed(m)
        if m - 2 * t < 1:
            raise ValueError(
                f'{_KEY}={self.trim_ratio} with {m} clients per round trims '
                f'{t} values at each end and leaves none to average; lower '
                f'{_KEY}.')
        if t == 0 and not self.allow_no_trim:
            hints = []
            if self.trim_ratio > 0:
                need = max(3, math.ceil(1 / self.trim_ratio - 1e-9))
                hints.append(f'at least {need} clients per round')
            if m >= 3:  # one value per end trimmed, one left
                hints.append(f'{_KEY} >= {1 / m:.3g}')
            hint = ' or '.join(hints) or 'more clients per round'
            raise ValueError(
                f'{_KEY}={self.trim_ratio} with {m} clients per round trims '
                f'floor({self.trim_ratio} * {m}) = 0 values: the result is '
                f'the plain mean and one client can move it arbitrarily. '
                f'Use {hint}, or set train_cfg.aggregator.allow_no_trim='
                'True to accept the plain mean.')
        self._clients_per_round = m

    def before_reduce(self, num_clients: int) -> None:
        """Warn when the round has too few clients to trim anything."""
        if self.trim_ratio == 0 or self.num_trimmed(num_clients) > 0:
            return
        expected = self._clients_per_round
        if self.allow_no_trim and (expected is None
                                   or self.num_trimmed(expected) == 0):
            return
        print_log(
            f'TrimmedMean: {num_clients} clients in this round, too few to '
            f'trim any value with trim_ratio={self.trim_ratio}: the round '
            'takes the plain mean of the updates.',
            logger='current',
            level=logging.WARNING)

    def reduce_chunk(self, rows: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
        m = rows.shape[0]
        t = self.num_trimmed(m)
        v = rows.sort(dim=0).values
        return v[t:m - t].mean(dim=0)

    def reduce_int_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The trimmed mean of the integer tensors, rounded down."""
        m = rows.shape[0]
        t = self.num_trimmed(m)
        v = rows.sort(dim=0).values[t:m - t]
        return v.sum(dim=0).div(m - 2 * t, rounding_mode='floor')
