"""Streaming aggregation of client models into the global model."""
import re
from typing import Dict, List, Optional, Sequence, Set

import torch

from ..dist_utils import all_reduce_tensors
from .flat_sum import FlatWeightedSum
from .int_reduce import int_result_like
from .update_checks import (all_finite, check_update, check_weight,
                            is_bn_stat_key, is_buffer_name,
                            reject_non_finite)

#: State-dict keys that stay on the client unless a config says otherwise:
#: the negative-key queues of MoCo/DenseCL/SwAV and their pointers are
#: client-local memories of the client's own data.
DEFAULT_LOCAL_PATTERNS = (r'(^|\.)queue\d*$', r'(^|\.)queue\d*_ptr$',
                          r'(^|\.)queue_ptr\d*$')


class BaseAggregator:
    """Aggregate client models as a running weighted sum of their updates.

    Only the global model, the running sum (float64, on the model's device;
    flat buffers, :class:`FlatWeightedSum`, with a packing buffer of at
    most a few MB per dtype) and the server optimizer's state live in
    memory: the memory does not grow with the number of clients. Under
    torch.distributed every rank adds its own clients and :meth:`finalize`
    all-reduces the sums.

    What is exchanged is chosen by regular expressions over state-dict keys
    (``re.search``): a key is exchanged when it matches one of ``include``
    (all keys by default) and none of ``exclude``. Every key that is not
    exchanged stays on the client and persists in its client state (e.g.
    BatchNorm under FedBN, MoCo's queue). Floating tensors are averaged
    (weighted); integer tensors (``num_batches_tracked``) take the maximum
    over the round's clients. A server optimizer (:meth:`server_step`)
    steps trainable parameters only: buffers (BatchNorm running statistics,
    any other floating buffer) take the plain weighted mean of the clients'
    values.

    A client's update enters the aggregate whole or not at all: every key
    is checked (present, shape and dtype kind of the global tensor, finite
    elements) before anything is accumulated; a refused client raises
    :class:`ClientUpdateRejected` and leaves the aggregate as if it had not
    been added.

    BatchNorm running statistics that are not exchanged (FedBN) stay on the
    clients, but :meth:`finalize` also returns their weighted mean over the
    round's clients (:attr:`export_only_keys`), so that the global model
    that is evaluated and exported carries statistics of trained clients
    rather than its initial ones.

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
        #: Exchanged keys that are trainable parameters (server-stepped).
        self.param_keys: List[str] = []
        #: Non-exchanged BatchNorm statistics averaged for the export.
        self.export_only_keys: List[str] = []
        self._param_set: Set[str] = set()
        self._global: Dict[str, torch.Tensor] = {}
        self._export_ref: Dict[str, torch.Tensor] = {}
        self._sum: Dict[str, torch.Tensor] = {}
        self._model_sum = FlatWeightedSum()
        self._int_max: Dict[str, torch.Tensor] = {}
        self._export_sum: Dict[str, torch.Tensor] = {}
        self._total_weight = 0.0
        self._num_clients = 0
        self._kinds: Optional[tuple] = None

    # -- what is exchanged -------------------------------------------------
    def select_keys(self,
                    state_keys: Sequence[str],
                    param_keys: Optional[Sequence[str]] = None) -> List[str]:
        """Decide which state-dict keys are exchanged with the server.

        Also records :attr:`param_keys` (exchanged trainable parameters, the
        only keys a server optimizer steps) and :attr:`export_only_keys`
        (BatchNorm running statistics that are not exchanged).

        Args:
            state_keys (Sequence[str]): Keys of the model's state dict.
            param_keys (Sequence[str], optional): Names of the model's
                trainable parameters (``model.named_parameters()``). When
                None, keys ending in ``running_mean``, ``running_var`` or
                ``num_batches_tracked`` are buffers and every other floating
                key a parameter. Defaults to None.

        Returns:
            list[str]: Exchanged keys, in state-dict order.

        Raises:
            ValueError: If an ``include``/``exclude`` pattern matches no key
                (a typo would otherwise silently change the algorithm),
                nothing is left to exchange, or a ``param_keys`` name is no
                key of the state dict.
        """
        state_keys = list(state_keys)
        for name, patterns in (('include', self.include or []),
                               ('exclude', self.exclude)):
            for pat in patterns:
                if pat in DEFAULT_LOCAL_PATTERNS:
                    continue
                if not any(re.search(pat, k) for k in state_keys):
                    raise ValueError(
                        f'aggregator.{name} pattern {pat!r} matches no key of '
                        f'the model state dict (first keys: '
                        f'{state_keys[:5]}).')
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
        self.param_keys = self._select_param_keys(keys, state_keys,
                                                  param_keys)
        self._param_set = set(self.param_keys)
        exchanged = set(keys)
        self.export_only_keys = [
            k for k in state_keys if k not in exchanged and is_bn_stat_key(k)
        ]
        return keys

    @staticmethod
    def _select_param_keys(keys: List[str], state_keys: List[str],
                           param_keys: Optional[Sequence[str]]) -> List[str]:
        """The exchanged keys that are trainable parameters."""
        if param_keys is None:
            return [k for k in keys if not is_buffer_name(k)]
        known = set(state_keys)
        unknown = [k for k in param_keys if k not in known]
        if unknown:
            raise ValueError(
                f'aggregator.select_keys: parameter name {unknown[0]!r} is '
                'not a key of the model state dict (param_keys must come '
                'from the named_parameters() of the model whose state dict '
                'is exchanged).')
        params = set(param_keys)
        return [k for k in keys if k in params]

    def check_clients_per_round(self, m: int) -> None:
        """Refuse a number of clients per round the aggregator cannot use.

        Called once before training. The base class accepts any number.

        Args:
            m (int): Clients sampled per round (``train_cfg``).

        Raises:
            ValueError: In subclasses, naming the offending config key.
        """

    def setup(self, work_dir: str) -> None:
        """Prepare run-level resources (called once before training).

        The base class needs none.

        Args:
            work_dir (str): The run's work directory.
        """

    # -- one round ------------------------------------------------------------
    def begin_round(self, global_state: Dict[str, torch.Tensor]) -> None:
        """Start a round from the current global tensors.

        Args:
            global_state (dict[str, Tensor]): Global model; exchanged keys
                and :attr:`export_only_keys` are read (export-only keys it
                lacks are not averaged this round). Not copied: it must not
                change in the round.
        """
        self._global = {k: global_state[k] for k in self.keys}
        self._export_ref = {
            k: global_state[k]
            for k in self.export_only_keys if k in global_state
        }
        self._sum = {}
        self._int_max = {}
        self._export_sum = {}
        self._total_weight = 0.0
        self._num_clients = 0
        self._kinds = None
        self._model_sum.reset(
            self._float_keys() if self._streams_models() else [],
            self._global)

    def _key_kinds(self) -> tuple:
        """``(floating keys, other keys)`` of the round's global tensors,
        computed once per round (the global tensors do not change in it).
        """
        if self._kinds is None:
            floats = [k for k in self.keys
                      if self._global[k].is_floating_point()]
            fset = set(floats)
            self._kinds = (floats, [k for k in self.keys if k not in fset])
        return self._kinds

    def client_weight(self, num_samples: int) -> float:
        """Weight of a client in the average."""
        return float(num_samples) if self.weighting == 'samples' else 1.0

    def _float_keys(self) -> List[str]:
        """Exchanged floating keys, in state-dict order."""
        return list(self._key_kinds()[0])

    def _int_keys(self) -> List[str]:
        """Exchanged non-floating keys, in state-dict order."""
        return list(self._key_kinds()[1])

    def add(self, client_id: int, state: Dict[str, torch.Tensor],
            num_samples: int) -> None:
        """Add one client's trained model to the aggregate.

        The whole update is checked first; a refused update changes
        nothing.

        Args:
            client_id (int): The client (for messages).
            state (dict[str, Tensor]): The client's model after local
                training (its exchanged and export-only keys are read).
            num_samples (int): The client's number of samples.

        Raises:
            ClientUpdateRejected: If a key is missing, a tensor's shape or
                dtype kind (floating/integer) differs from the global one,
                an element is NaN/Inf (``check_finite``), or the sample
                count is negative or not finite.
        """
        check_weight(client_id, num_samples)
        refs = dict(self._global)
        refs.update(self._export_ref)
        streams = self._streams_models()
        update = check_update(client_id, state, refs, list(refs),
                              self.check_finite and not streams)
        weight = self.client_weight(num_samples)
        if streams:  # the model's floats are checked as they are folded
            if self.check_finite and not all_finite(
                    [update[k] for k in self._export_ref]):
                reject_non_finite(client_id, update, refs)
            if not self._model_sum.fold(update, weight, self.check_finite):
                reject_non_finite(client_id, update, refs)
        self.admit(client_id, update, weight, folded=streams)

    def admit(self, client_id: int, update: Dict[str, torch.Tensor],
              weight: float, folded: bool = False) -> None:
        """Fold a checked update into every part of the round's state.

        The first step that can fail (e.g. a disk buffer write) runs first,
        so a failure leaves the round's state unchanged.

        Args:
            client_id (int): The client.
            update (dict[str, Tensor]): Checked tensors of the exchanged and
                export-only keys.
            weight (float): The client's aggregation weight.
            folded (bool): Whether the floating exchanged tensors are
                already in the running sum of models (:meth:`add` folds
                them while checking them). Defaults to False.
        """
        floats = self._float_keys()
        if self._streams_models():
            if not folded:
                self._model_sum.fold(update, weight, check_finite=False)
        else:
            deltas = {
                k: update[k].double() - self._global[k].double()
                for k in floats
            }
            self._accumulate(client_id, deltas, weight)
        self._record_ints(client_id, {k: update[k] for k in self._int_keys()})
        self._accumulate_export(
            client_id, {k: update[k] for k in self._export_ref}, weight)
        self._total_weight += weight
        self._num_clients += 1

    def _streams_models(self) -> bool:
        """Whether the running sum is over models rather than deltas.

        Summing the models themselves costs a client one packing copy,
        one finiteness reduction and one multiply-add over flat buffers
        (:class:`FlatWeightedSum`); the mean update is taken once at the
        end.
        Subclasses that override :meth:`_accumulate` receive deltas.
        """
        return type(self)._accumulate is BaseAggregator._accumulate

    def _accumulate(self, client_id: int, deltas: Dict[str, torch.Tensor],
                    weight: float) -> None:
        """Fold one client's (float64) deltas into the running sum."""
        for k, d in deltas.items():
            if k in self._sum:
                self._sum[k].add_(d, alpha=weight)
            else:
                self._sum[k] = d.mul_(weight)

    def running_sums(self) -> Dict[str, torch.Tensor]:
        """This rank's float64 running sums of the round, per floating
        exchanged key (weighted models when :meth:`_streams_models`, else
        weighted deltas); empty before the first client."""
        return self._model_sum.as_dict() if self._streams_models() \
            else self._sum

    def _record_ints(self, client_id: int,
                     ints: Dict[str, torch.Tensor]) -> None:
        """Keep the running maximum of the integer tensors."""
        if not self._int_max:
            self._int_max = {k: t.clone() for k, t in ints.items()}
            return
        keys = list(ints)
        try:  # one fused call for every integer tensor
            torch._foreach_maximum_([self._int_max[k] for k in keys],
                                    [ints[k] for k in keys])
        except (AttributeError, RuntimeError, TypeError):
            for k in keys:
                self._int_max[k] = torch.maximum(self._int_max[k], ints[k])

    def _accumulate_export(self, client_id: int,
                           values: Dict[str, torch.Tensor],
                           weight: float) -> None:
        """Fold one client's export-only statistics into their sum."""
        fold_weighted(self._export_sum, values, list(values), weight)

    def reduce_mean_delta(self) -> Optional[Dict[str, torch.Tensor]]:
        """All-reduce the sums and return the weighted mean update.

        Returns:
            dict[str, Tensor] or None: Mean float64 update per float key; None
            when no client of any rank contributed.
        """
        running = self.running_sums()
        sums = {
            k: running.get(k, torch.zeros_like(self._global[k],
                                               dtype=torch.float64))
            for k in self._float_keys()
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
        vals = {
            k: self._int_max.get(k, self._global[k]).to(torch.int64)
            for k in self._int_keys()
        }
        vals = all_reduce_tensors(vals, 'max')
        return {k: int_result_like(v, self._global[k])
                for k, v in vals.items()}

    def reduce_export_keys(self) -> Dict[str, torch.Tensor]:
        """All-reduce the export-only statistics; their weighted mean.

        Returns:
            dict[str, Tensor]: New values of the export-only keys (dtype and
            device of the global ones); empty when no client contributed.
        """
        if not self._export_ref:
            return {}
        sums = {
            k: self._export_sum.get(
                k, torch.zeros_like(ref, dtype=torch.float64))
            for k, ref in self._export_ref.items()
        }
        sums['__weight__'] = torch.tensor([self._total_weight],
                                          dtype=torch.float64)
        sums = all_reduce_tensors(sums, 'sum')
        total = float(sums.pop('__weight__').item())
        if total <= 0:
            return {}
        return {
            k: (v / total).to(self._export_ref[k].device,
                              self._export_ref[k].dtype)
            for k, v in sums.items()
        }

    def finalize(self) -> Optional[Dict[str, torch.Tensor]]:
        """Produce the new global values of the round.

        Returns:
            dict[str, Tensor] or None: New global tensors (dtype and device of
            the old ones) of the exchanged keys and of
            :attr:`export_only_keys` (the clients' averaged statistics, for
            the evaluated and exported global model; clients keep their own);
            None when no client contributed this round (the global model is
            then left unchanged).
        """
        mean_delta = self.reduce_mean_delta()
        ints = self.reduce_int_keys()
        export = self.reduce_export_keys()
        if mean_delta is None:
            return None
        params = {k: d for k, d in mean_delta.items() if k in self._param_set}
        step = self.server_step(params)
        step.update(
            {k: d for k, d in mean_delta.items() if k not in self._param_set})
        new = {}
        for k, d in step.items():
            g = self._global[k]
            new[k] = (g.double() + d.to(g.device)).to(g.dtype)
        new.update(ints)
        new.update(export)
        return new

    def server_step(
            self, mean_delta: Dict[str,
                                   torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Turn the mean client update into the global update.

        Receives the trainable parameters only (:attr:`param_keys`); buffers
        take the mean update as it is. Plain averaging applies the mean
        update as it is. Server optimizers (FedAvgM, FedAdam) override this.

        Args:
            mean_delta (dict[str, Tensor]): Mean float64 update per
                parameter key.

        Returns:
            dict[str, Tensor]: The global update per key of ``mean_delta``.
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


def fold_weighted(sums: Dict[str, torch.Tensor],
                  values: Dict[str, torch.Tensor], keys: Sequence[str],
                  weight: float) -> None:
    """``sums[k] += weight * values[k]`` in float64, in place.

    A key not yet in ``sums`` starts as ``weight * values[k]`` in float64
    on the value's device; keys already there are updated with one fused
    ``torch._foreach_add_`` (one call instead of one per tensor).

    Args:
        sums (dict[str, Tensor]): Running float64 sums, updated in place.
        values (dict[str, Tensor]): One client's tensors.
        keys (Sequence[str]): Keys to fold.
        weight (float): The client's weight.
    """
    fresh = {k for k in keys if k not in sums}
    for k in fresh:
        sums[k] = values[k].to(torch.float64, copy=True).mul_(weight)
    rest = [k for k in keys if k not in fresh]
    if rest:
        torch._foreach_add_([sums[k] for k in rest],
                            [values[k] for k in rest], alpha=weight)
