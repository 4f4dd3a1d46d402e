"""Streaming aggregation of client models into the global model."""
import re
from typing import Dict, List, Optional, Sequence

import torch

from ..dist_utils import all_reduce_tensors

#: State-dict keys that stay on the client unless a config says otherwise:
#: the negative-key queues of MoCo/DenseCL/SwAV and their pointers are
#: client-local memories of the client's own data.
DEFAULT_LOCAL_PATTERNS = (r'(^|\.)queue\d*$', r'(^|\.)queue\d*_ptr$',
                          r'(^|\.)queue_ptr\d*$')


class ClientUpdateRejected(RuntimeError):
    """Raised when a client's update cannot enter the aggregate."""


class BaseAggregator:
    """Aggregate client models as a running weighted sum of their updates.

    Only the global model, the running sum (float64) and the server
    optimizer's state live in memory: the memory does not grow with the
    number of clients. Under torch.distributed every rank adds its own
    clients and :meth:`finalize` all-reduces the sums.

    What is exchanged is chosen by regular expressions over state-dict keys
    (``re.search``): a key is exchanged when it matches one of ``include``
    (all keys by default) and none of ``exclude``. Every key that is not
    exchanged stays on the client and persists in its client state (e.g.
    BatchNorm under FedBN, MoCo's queue). Floating tensors are averaged
    (weighted); integer tensors (``num_batches_tracked``) take the maximum
    over the round's clients.

    Args:
        include (Sequence[str], optional): Patterns of exchanged keys.
            Defaults to None (every key).
        exclude (Sequence[str], optional): Patterns of keys that stay local.
            Defaults to :data:`DEFAULT_LOCAL_PATTERNS` (queues).
        weighting (str): ``'samples'`` (weight = client's sample count, as in
            FedAvg) or ``'uniform'``. Defaults to ``'samples'``.
        check_finite (bool): Reject updates holding NaN/Inf. Defaults to True.
    """

    def __init__(self,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = DEFAULT_LOCAL_PATTERNS,
                 weighting: str = 'samples',
                 check_finite: bool = True) -> None:
        if weighting not in ('samples', 'uniform'):
            raise ValueError("`aggregator.weighting` must be 'samples' or "
                             f"'uniform', got {weighting!r}.")
        self.include = list(include) if include is not None else None
        self.exclude = list(exclude) if exclude is not None else []
        self.weighting = weighting
        self.check_finite = check_finite
        self.keys: List[str] = []
        self._global: Dict[str, torch.Tensor] = {}
        self._sum: Dict[str, torch.Tensor] = {}
        self._int_max: Dict[str, torch.Tensor] = {}
        self._total_weight = 0.0
        self._num_clients = 0

    # -- what is exchanged -------------------------------------------------
    def select_keys(self, state_keys: Sequence[str]) -> List[str]:
        """Decide which state-dict keys are exchanged with the server.

        Args:
            state_keys (Sequence[str]): Keys of the model's state dict.

        Returns:
            list[str]: Exchanged keys, in state-dict order.

        Raises:
            ValueError: If an ``include``/``exclude`` pattern matches no key
                (a typo would otherwise silently change the algorithm), or
                nothing is left to exchange.
        """
        for name, patterns in (('include', self.include or []),
                               ('exclude', self.exclude)):
            for pat in patterns:
                if pat in DEFAULT_LOCAL_PATTERNS:
                    continue
                if not any(re.search(pat, k) for k in state_keys):
                    raise ValueError(
                        f'aggregator.{name} pattern {pat!r} matches no key of '
                        f'the model state dict (first keys: '
                        f'{list(state_keys)[:5]}).')
        keys = [
            k for k in state_keys
            if (self.include is None or any(
                re.search(p, k) for p in self.include)) and not any(
                    re.search(p, k) for p in self.exclude)
        ]
        if not keys:
            raise ValueError('The aggregator include/exclude patterns leave '
                             'no key of the model to exchange.')
        self.keys = keys
        return keys

    # -- one round ------------------------------------------------------------
    def begin_round(self, global_state: Dict[str, torch.Tensor]) -> None:
        """Start a round from the current global (exchanged) tensors.

        Args:
            global_state (dict[str, Tensor]): Global model; only exchanged
                keys are read. Not copied: it must not change in the round.
        """
        self._global = {k: global_state[k] for k in self.keys}
        self._sum = {}
        self._int_max = {}
        self._total_weight = 0.0
        self._num_clients = 0

    def client_weight(self, num_samples: int) -> float:
        """Weight of a client in the average."""
        return float(num_samples) if self.weighting == 'samples' else 1.0

    def add(self, client_id: int, state: Dict[str, torch.Tensor],
            num_samples: int) -> None:
        """Add one client's trained model to the running sum.

        Args:
            client_id (int): The client (for messages).
            state (dict[str, Tensor]): The client's model after local
                training (its exchanged keys are read).
            num_samples (int): The client's number of samples.

        Raises:
            ClientUpdateRejected: If the update holds NaN/Inf.
        """
        w = self.client_weight(num_samples)
        floats = [k for k in self.keys if state[k].is_floating_point()]
        if self.check_finite:
            for k in floats:
                # one reduction, no temporary: NaN/Inf anywhere make it so
                if not torch.isfinite(state[k].detach().sum()):
                    raise ClientUpdateRejected(
                        f'client {client_id}: non-finite values in {k!r}')
        if self._streams_models():
            self._accumulate_model(state, floats, w)
        else:
            deltas = {
                k: state[k].detach().double() - self._global[k].double()
                for k in floats
            }
            self._accumulate(client_id, deltas, w)
        for k in self.keys:
            t = state[k].detach()
            if t.is_floating_point():
                continue
            prev = self._int_max.get(k)
            self._int_max[k] = t.clone() if prev is None else torch.maximum(
                prev, t)
        self._total_weight += w
        self._num_clients += 1

    def _streams_models(self) -> bool:
        """Whether the running sum is over models rather than deltas.

        Summing the models themselves is one pass over the parameters per
        client (no temporaries); the mean update is taken once at the end.
        Subclasses that override :meth:`_accumulate` receive deltas.
        """
        return type(self)._accumulate is BaseAggregator._accumulate

    def _accumulate_model(self, state: Dict[str, torch.Tensor],
                          keys: List[str], weight: float) -> None:
        """Fold one client's model into the float64 weighted sum."""
        for k in keys:
            t = state[k].detach()
            if k in self._sum:
                self._sum[k].add_(t, alpha=weight)
            else:
                self._sum[k] = t.double().mul_(weight)

    def _accumulate(self, client_id: int, deltas: Dict[str, torch.Tensor],
                    weight: float) -> None:
        """Fold one client's (float64) deltas into the running sum."""
        for k, d in deltas.items():
            if k in self._sum:
                self._sum[k].add_(d, alpha=weight)
            else:
                self._sum[k] = d.mul_(weight)

    def reduce_mean_delta(self) -> Optional[Dict[str, torch.Tensor]]:
        """All-reduce the sums and return the weighted mean update.

        Returns:
            dict[str, Tensor] or None: Mean float64 update per float key; None
            when no client of any rank contributed.
        """
        float_keys = [
            k for k in self.keys if self._global[k].is_floating_point()
        ]
        sums = {
            k: self._sum.get(k, torch.zeros_like(self._global[k],
                                                 dtype=torch.float64))
            for k in float_keys
        }
        sums['__weight__'] = torch.tensor([self._total_weight],
                                          dtype=torch.float64)
        sums = all_reduce_tensors(sums, 'sum')
        total = float(sums.pop('__weight__').item())
        if total <= 0:
            return None
        if self._streams_models():  # mean model - global model
            return {
                k: v.div_(total).sub_(self._global[k].double())
                for k, v in sums.items()
            }
        return {k: v / total for k, v in sums.items()}

    def reduce_int_keys(self) -> Dict[str, torch.Tensor]:
        """All-reduce (max) the integer tensors of the round's clients."""
        int_keys = [
            k for k in self.keys if not self._global[k].is_floating_point()
        ]
        vals = {
            k: self._int_max.get(k, self._global[k]).to(torch.int64)
            for k in int_keys
        }
        vals = all_reduce_tensors(vals, 'max')
        return {k: v.to(self._global[k].dtype) for k, v in vals.items()}

    def finalize(self) -> Optional[Dict[str, torch.Tensor]]:
        """Produce the new global values of the exchanged keys.

        Returns:
            dict[str, Tensor] or None: New global tensors (dtype and device of
            the old ones); None when no client contributed this round (the
            global model is then left unchanged).
        """
        mean_delta = self.reduce_mean_delta()
        ints = self.reduce_int_keys()
        if mean_delta is None:
            return None
        step = self.server_step(mean_delta)
        new = {}
        for k, d in step.items():
            g = self._global[k]
            new[k] = (g.double() + d.to(g.device)).to(g.dtype)
        new.update(ints)
        return new

    def server_step(
            self, mean_delta: Dict[str,
                                   torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Turn the mean client update into the global update.

        Plain averaging applies the mean update as it is. Server optimizers
        (FedAvgM, FedAdam) override this.
        """
        return mean_delta

    @property
    def num_clients(self) -> int:
        """Clients added on this rank in the current round."""
        return self._num_clients

    # -- checkpointing --------------------------------------------------------
    def state_dict(self) -> dict:
        """Server-optimizer state (plain tensors) for checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
