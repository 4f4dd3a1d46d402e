"""Streaming aggregation of client models into the global model."""
from typing import Dict, List, Optional, Sequence, Set

import torch

from ..dist_utils import all_reduce_tensors
from .aggregate import (DEFAULT_LOCAL_PATTERNS, apply_step, fold_max,
                        fold_weighted, reduce_weighted_sums,
                        select_exchanged_keys, weighted_mean_like)
from .model_sum import PerTensorSum
from .int_reduce import int_result_like
from .update_checks import (all_finite, check_update, check_weight,
                            reject_non_finite)

__all__ = ['BaseAggregator', 'DEFAULT_LOCAL_PATTERNS', 'fold_weighted']


class BaseAggregator:
    """Aggregate client models as a running weighted sum of their updates.

    Only the global model, the running sum (float64, one tensor per key,
    on the model's device: :class:`PerTensorSum`) and the server
    optimizer's state live in memory: the memory does not grow with the
    number of clients. Under
    torch.distributed every rank adds its own clients and :meth:`finalize`
    all-reduces the sums.

    A key is exchanged when it matches (``re.search``) one of ``include``
    (all keys by default) and none of ``exclude``; the others stay on the
    client, in its client state (BatchNorm under FedBN, MoCo's queue).
    Floating tensors are averaged (weighted); integer tensors
    (``num_batches_tracked``) take the maximum over the round's clients. A
    server optimizer (:meth:`server_step`) steps trainable parameters only;
    floating buffers take the plain weighted mean. The maths are the
    functions of :mod:`~decssl_mm.federated.aggregators.aggregate`.

    A client's update enters the aggregate whole or not at all: every key
    is checked (present, shape and dtype kind, finite) first; a refused
    client raises :class:`ClientUpdateRejected` and changes nothing.
    BatchNorm statistics that are not exchanged (FedBN) stay on the
    clients, but :meth:`finalize` also returns their weighted mean
    (:attr:`export_only_keys`), so that the exported global model carries
    statistics of trained clients.

    Args:
        include (Sequence[str], optional): Patterns of exchanged keys.
            Defaults to None (every key).
        exclude (Sequence[str], optional): Patterns of keys that stay local.
            Defaults to :data:`DEFAULT_LOCAL_PATTERNS` (queues).
        weighting (str): ``'samples'`` (weight = client's sample count, as in
            FedAvg) or ``'uniform'``. Defaults to ``'samples'``.
        check_finite (bool): Reject updates holding NaN/Inf. Defaults to True.
    """

    #: Sum client models (mean update taken once, at the end) rather than
    #: deltas; a subclass overriding :meth:`_accumulate` sets it False.
    sums_models: bool = True

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
        self._model_sum = PerTensorSum()
        if self.sums_models and \
                type(self)._accumulate is not BaseAggregator._accumulate:
            raise TypeError(f'{type(self).__name__} overrides _accumulate '
                            '(deltas): set sums_models = False on it.')
        self._int_max: Dict[str, torch.Tensor] = {}
        self._export_sum: Dict[str, torch.Tensor] = {}
        self._total_weight = 0.0
        self._num_clients = 0
        self._kinds: Optional[tuple] = None

    # -- what is exchanged -------------------------------------------------
    def select_keys(self,
                    state_keys: Sequence[str],
                    param_keys: Optional[Sequence[str]] = None) -> List[str]:
        """Decide which state-dict keys are exchanged with the server
        (:func:`~.aggregate.select_exchanged_keys`: arguments and errors).

        Also records :attr:`param_keys` (exchanged trainable parameters, the
        only keys a server optimizer steps) and :attr:`export_only_keys`
        (BatchNorm running statistics that are not exchanged).

        Returns:
            list[str]: Exchanged keys, in state-dict order.
        """
        keys, params, export_only = select_exchanged_keys(
            state_keys, self.include, self.exclude, param_keys)
        self.keys = keys
        self.param_keys = params
        self._param_set = set(params)
        self.export_only_keys = export_only
        return keys

    def check_clients_per_round(self, m: int) -> None:
        """Refuse (``ValueError`` naming the config key) a number ``m`` of
        clients per round the aggregator cannot use; called once before
        training. The base class accepts any number."""

    def setup(self, work_dir: str) -> None:
        """Prepare run-level resources under ``work_dir`` (called once
        before training). The base class needs none."""

    # -- one round ------------------------------------------------------------
    def begin_round(self, global_state: Dict[str, torch.Tensor]) -> None:
        """Start a round from the global tensors (exchanged and export-only
        keys are read; not copied: they must not change in the round)."""
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
            self._float_keys() if self.sums_models else [],
            self._global)

    def _key_kinds(self) -> tuple:
        """``(floating keys, other keys)`` of the round's global tensors
        (once per round: they do not change in it)."""
        if self._kinds is None:
            floats = [k for k in self.keys
                      if self._global[k].is_floating_point()]
            self._kinds = (floats, [k for k in self.keys if k not in floats])
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
            ClientUpdateRejected: A key missing, a shape or dtype kind not
                the global one's, a NaN/Inf (``check_finite``), a negative
                or non-finite sample count.
        """
        check_weight(client_id, num_samples)
        refs = dict(self._global)
        refs.update(self._export_ref)
        streams = self.sums_models
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
        if self.sums_models:
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
        exchanged key (weighted models when :attr:`sums_models`, else
        weighted deltas); empty before the first client."""
        return self._model_sum.as_dict() if self.sums_models \
            else self._sum

    def _record_ints(self, client_id: int,
                     ints: Dict[str, torch.Tensor]) -> None:
        """Keep the running maximum of the integer tensors."""
        fold_max(self._int_max, ints)

    def _accumulate_export(self, client_id: int,
                           values: Dict[str, torch.Tensor],
                           weight: float) -> None:
        """Fold one client's export-only statistics into their sum."""
        fold_weighted(self._export_sum, values, list(values), weight)

    def reduce_mean_delta(self) -> Optional[Dict[str, torch.Tensor]]:
        """All-reduce the sums: the weighted mean float64 update per float
        key (None when no client of any rank contributed)."""
        running = self.running_sums()
        sums = {
            k: running.get(k, torch.zeros_like(self._global[k],
                                               dtype=torch.float64))
            for k in self._float_keys()
        }
        sums, total = reduce_weighted_sums(sums, self._total_weight)
        if total <= 0:
            return None
        if self.sums_models:  # mean model - global model
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
        """All-reduce the export-only statistics; their weighted mean (dtype
        and device of the global ones; empty when no client contributed).
        """
        if not self._export_ref:
            return {}
        sums = {
            k: self._export_sum.get(
                k, torch.zeros_like(ref, dtype=torch.float64))
            for k, ref in self._export_ref.items()
        }
        sums, total = reduce_weighted_sums(sums, self._total_weight)
        return weighted_mean_like(sums, total, self._export_ref)

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
        new = apply_step(self._global, step)
        new.update(ints)
        new.update(export)
        return new

    def server_step(self, mean_delta: Dict[str, torch.Tensor]
                    ) -> Dict[str, torch.Tensor]:
        """Turn the mean client update into the global update: as it is
        here; server optimizers (FedAvgM, FedAdam) override this. Receives
        the trainable parameters only (:attr:`param_keys`).

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

