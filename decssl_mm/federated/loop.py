"""The federated training loop: one mmengine epoch is one round."""
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import barrier, get_rank
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from decssl_mm.engine.workdir_lock import acquire_work_dir_lock
from decssl_mm.registry import LOOPS
from decssl_mm.utils.state_dict import StateDict, copy_state
from .checkpoint_refs import checkpoint_alive_fn
from .client_runner import ClientRunner
from .federated_hook import FederatedStateHook
from .loop_parts import (build_local_schedule, build_parts,
                         loop_state_dict, restore_loop_state)
from .loop_checks import (check_epoch_schedulers, check_round_data,
                          validate_schedule)
from .messages import RunContext
from .round_data import with_round_batch_sampler
from .round_planner import RoundPlanner
from .run_log import RoundTimer, log_round_scalars, log_run_start
from .round_outcome import CommMeter, gather_outcome, raise_if_all_failed


@LOOPS.register_module()
class FederatedTrainLoop(BaseLoop):
    """Federated training: FedAvg-style rounds over client-partitioned data.

    The loop holds the round's control flow and alone owns the client
    sampler (``train_cfg.sampler``), the client-state store
    (``train_cfg.client_state``), the hooks and the checkpoints. The server
    (``train_cfg.server``, aggregation through ``train_cfg.aggregator``) and
    the client trainer (``train_cfg.trainer``) never see it: they talk by
    messages (:mod:`~decssl_mm.federated.messages`).

    Round ``r`` (mmengine's epoch ``r``): sample participants, share them
    among ranks, ``server.begin_round``; per client of this rank
    (:class:`~decssl_mm.federated.client_runner.ClientRunner`) the hook
    ``before_client(runner, client_id, round_idx)``, ``server.configure``
    -> task, ``trainer.fit(task, batches, local_state)`` -> result (each
    local step through :meth:`run_iter`: iteration hooks fire),
    ``server.add(result)``, the client state to the store, the hook
    ``after_client(runner, client_id, round_idx, trained)``; then
    ``server.finish_round`` (all-reduced over ranks), the global model into
    the working model, ``after_train_epoch`` hooks (checkpoint, validation).

    Parameter schedulers must be epoch based; their unit is
    ``schedule_unit``: a round (every local step of round ``r`` uses the
    value of epoch ``r``) or a local epoch (local epoch ``e`` of round
    ``r`` uses epoch ``r x local_epochs + e``;
    :mod:`~decssl_mm.federated.local_schedule`).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): ``train_dataloader`` over a
            ``ClientPartitionedDataset``; its batch sampler becomes a
            :class:`ClientRoundBatchSampler`.
        rounds (int): Number of communication rounds.
        local_epochs (int, optional): Local epochs per client per round.
        local_iters (int, optional): Local iterations per client per round
            (instead of ``local_epochs``).
        participation (float, optional): Fraction of clients per round.
        clients_per_round (int, optional): Clients per round (instead of
            ``participation``). Neither: every client, every round.
        sampler, aggregator, server, trainer, client_state (dict, optional):
            Configs of the client sampler (``UniformClientSampler``), the
            aggregator (given to the server; ``FedAvg``), the server
            (``FedAvgServer``), the client trainer (``ClientTrainer``) and
            the client-state store (``DiskClientStateStore``).
        optimizer_policy (str): ``'reset'`` or ``'keep'``, given to the
            trainer. Defaults to ``'reset'``.
        schedule_unit (str): ``'round'`` or ``'local_epoch'``. Defaults to
            ``'round'``.
        seed (int, optional): Seed of data order and augmentations of every
            (round, client). Defaults to the runner's seed.
        client_retries (int): Times a failing client is retried in the same
            round before it is dropped. Defaults to 0.
        val_begin (int): First round after which to validate.
        val_interval (int): Validation interval in rounds.
    """

    #: Marks a loop whose state :class:`FederatedStateHook` checkpoints.
    is_federated = True

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 rounds: int,
                 local_epochs: Optional[int] = None,
                 local_iters: Optional[int] = None,
                 participation: Optional[float] = None,
                 clients_per_round: Optional[int] = None,
                 sampler: Optional[dict] = None,
                 aggregator: Optional[dict] = None,
                 server: Optional[dict] = None,
                 trainer: Optional[dict] = None,
                 client_state: Optional[dict] = None,
                 optimizer_policy: str = 'reset',
                 schedule_unit: str = 'round',
                 seed: Optional[int] = None,
                 client_retries: int = 0,
                 val_begin: int = 1,
                 val_interval: int = 1) -> None:
        validate_schedule(rounds, local_epochs, local_iters)
        self.schedule_unit = schedule_unit
        self.local_schedule = build_local_schedule(schedule_unit,
                                                   local_epochs)
        if isinstance(dataloader, dict):
            dataloader = with_round_batch_sampler(dataloader)
        super().__init__(runner, dataloader)
        self.dataset = self.dataloader.dataset
        self.batch_sampler = self.dataloader.batch_sampler
        check_round_data(self.dataset, self.batch_sampler)
        self.client_sizes = np.asarray(self.dataset.client_sizes, np.int64)
        self.num_clients = len(self.client_sizes)
        self._max_epochs = int(rounds)
        self.seed = int(runner.seed if seed is None else seed)
        self.planner = RoundPlanner(self.dataset, self.batch_sampler,
                                    self.seed, local_epochs, local_iters)
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self._epoch = 0
        self._iter = 0
        self._rounds_done = 0
        self.comm = CommMeter()
        self._pending_state: Optional[dict] = None
        self.timer = RoundTimer()

        (self.client_sampler, self.trainer, self.server,
         self.store) = build_parts(runner.work_dir, self.seed, sampler,
                                   participation, clients_per_round, trainer,
                                   server, aggregator, client_state,
                                   optimizer_policy)
        self.clients_per_round = self.client_sampler.num_sampled(
            self.num_clients)
        self.clients = ClientRunner(self, client_retries)
        self._round_batch = 0  # batch index in the round (hooks)
        self._max_iters = self._max_epochs * \
            self.planner.expected_round_iters(self.clients_per_round)
        if hasattr(self.dataset, 'metainfo'):
            runner.visualizer.dataset_meta = self.dataset.metainfo
        if not any(isinstance(h, FederatedStateHook) for h in runner.hooks):
            runner.register_hook(FederatedStateHook(), priority='VERY_HIGH')

    @property
    def max_epochs(self) -> int:
        """Number of rounds."""
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        """Expected local iterations of this rank over the whole run."""
        return self._max_iters

    @property
    def epoch(self) -> int:
        """Rounds completed."""
        return self._epoch

    @property
    def iter(self) -> int:
        """Local iterations run on this rank."""
        return self._iter

    @property
    def model(self) -> torch.nn.Module:
        """The working model (unwrapped)."""
        m = self.runner.model
        return getattr(m, 'module', m)

    @property
    def global_state(self) -> StateDict:
        """The server's exported global model."""
        return self.server.global_state

    @property
    def exchanged_keys(self) -> List[str]:
        """State-dict keys exchanged with the server."""
        return self.server.exchanged_keys

    @property
    def exchanged_bytes(self) -> int:
        """Bytes of the exchanged tensors (one way, one client)."""
        return self.server.exchanged_bytes

    @property
    def comm_bytes_total(self) -> int:
        """Bytes exchanged so far (both ways, every client)."""
        return self.comm.total

    def client_batches(self, client_id: int, round_idx: int) -> list:
        """A client's planned batches (see :class:`RoundPlanner`)."""
        return self.planner.client_batches(client_id, round_idx)

    def run(self) -> torch.nn.Module:
        """Run all (remaining) rounds."""
        acquire_work_dir_lock(self.runner.work_dir)  # before any removal
        check_epoch_schedulers(self.runner.param_schedulers)
        self.runner.call_hook('before_train')
        self._setup()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            if (self.runner.val_loop is not None
                    and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0
                         or self._epoch == self._max_epochs)):
                self.runner.val_loop.run()
        if get_rank() == 0:  # versions no kept checkpoint refers to
            self.store.prune(checkpoint_alive_fn(self.runner))
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> None:
        """Run one communication round."""
        self.timer.begin()
        self.runner.call_hook('before_train_epoch')
        if get_rank() == 0:
            self.store.prune(checkpoint_alive_fn(self.runner))
        round_idx = self._epoch
        participants = self.client_sampler.sample(round_idx,
                                                  self.client_sizes)
        mine = self.planner.my_clients(participants)
        self.server.begin_round(round_idx, mine, self.clients.memos(mine))
        self.model.train()
        self.trainer.begin_round(round_idx)
        if self.local_schedule is not None:
            self.local_schedule.begin_round(self.runner.param_schedulers)
        self._round_batch = 0
        outcome = self.clients.run_round(round_idx, mine)
        self._end_round(round_idx, participants, *outcome)
        if self.local_schedule is not None:
            self.local_schedule.end_round()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self.timer.log(round_idx, self._max_epochs, len(participants),
                       self.comm.total)

    def run_iter(self, idx: int, data_batch: Sequence[dict],
                 step: Callable[[Sequence[dict]], dict]) -> dict:
        """One local iteration (the trainer's ``step``) inside the train-iter
        hooks, with the round's batch index (not the client's ``idx``)."""
        idx = self._round_batch
        self.runner.call_hook('before_train_iter', batch_idx=idx,
                              data_batch=data_batch)
        outputs = step(data_batch)
        self.runner.call_hook('after_train_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs)
        self._round_batch += 1
        self._iter += 1
        if self.local_schedule is not None:
            self.local_schedule.after_step()
        return outputs

    # ----------------------------------------------------------------- setup
    def _setup(self) -> None:
        self.server.setup(RunContext(
            self.model, self.dataset, self.client_sizes,
            self.clients_per_round, self.seed, self.runner.work_dir))
        self.trainer.setup(self.runner.model, self.runner.optim_wrapper,
                           self.dataset, self.run_iter)
        log_run_start(self)
        if self._pending_state is not None and self._epoch > 0:
            self._apply_resumed_state(self._pending_state)  # not load_from
        self._pending_state = None
        if get_rank() == 0:  # all wait: no new state is taken for a stale one
            self.store.remove_stale(resumed=self._epoch > 0)
        barrier()

    def _end_round(self, round_idx: int, participants: np.ndarray,
                   ok: List[int], failed: List[int],
                   written: Dict[int, int]) -> None:
        outcome = gather_outcome(ok, failed, written,
                                 self.clients.round_errors)
        self.store.merge_index(outcome.written)
        raise_if_all_failed(round_idx, outcome)
        extra = self.server.finish_round(round_idx)
        copy_state(self.model.state_dict(), self.global_state)
        self._rounds_done = round_idx + 1
        scalars = self.comm.count(self.exchanged_bytes, len(participants),
                                  outcome, extra.pop('comm/extra_bytes', 0))
        scalars.update(extra)
        log_round_scalars(self.runner, round_idx, scalars)

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Loop state for the checkpoint (plain tensors and numbers)."""
        return loop_state_dict(self._rounds_done, self.server, self.store,
                               self.comm.total)

    def load_state_dict(self, state: dict) -> None:
        """Keep a checkpoint's loop state; applied when training starts."""
        self._pending_state = state

    def _apply_resumed_state(self, state: dict) -> None:
        self.comm.total = restore_loop_state(self.runner, state, self._epoch,
                                             self.server, self.store)
        self._rounds_done = self._epoch
