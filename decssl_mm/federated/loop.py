"""The federated training loop: one mmengine epoch is one round."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import barrier, get_rank, get_world_size
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from decssl_mm.engine.workdir_lock import acquire_work_dir_lock
from decssl_mm.registry import (CLIENT_SAMPLERS, CLIENT_STATE_STORES,
                                CLIENT_TRAINERS, LOOPS, SERVERS)
from decssl_mm.utils.registry_utils import build_checked
from .checkpoint_refs import checkpoint_alive_fn, checkpoint_indices
from .federated_hook import FederatedStateHook
from .local_schedule import SCHEDULE_UNITS, LocalEpochSchedule
from .loop_checks import (check_epoch_schedulers, check_round_data,
                          validate_schedule)
from .round_data import with_round_batch_sampler
from .round_stream import RoundStream
from .round_planner import RoundPlanner
from .run_log import RoundTimer, log_run_start
from .round_outcome import CommMeter, gather_outcome, raise_if_all_failed

StateDict = Dict[str, torch.Tensor]


@LOOPS.register_module()
class FederatedTrainLoop(BaseLoop):
    """Federated training: FedAvg-style rounds over client-partitioned data.

    The loop holds the round's control flow only; what varies is a
    registered component chosen in ``train_cfg``:

    - ``sampler`` (:mod:`~decssl_mm.federated.client_sampler`): which
      clients take part in round ``r``;
    - ``trainer`` (:class:`~decssl_mm.federated.trainers.ClientTrainer`):
      one client's local work (start weights, local objective, what stays
      on the client);
    - ``server`` (:class:`~decssl_mm.federated.servers.FedAvgServer`): the
      global model(s), what a client starts from, aggregation through
      ``aggregator``;
    - ``client_state`` (:class:`~decssl_mm.federated.DiskClientStateStore`):
      where client-local state lives between a client's rounds.

    Round ``r`` (mmengine's epoch ``r``): sample participants, share them
    among ranks, ``server.begin_round``; per client of this rank the hook
    ``before_client(runner, client_id, round_idx)``, ``trainer.run_client``
    (local steps through :meth:`run_iter`: iteration hooks fire), the hook
    ``after_client(runner, client_id, round_idx, trained)``; then
    ``server.finish_round`` (all-reduced over ranks), the global model into
    the working model, ``after_train_epoch`` hooks (checkpoint, validation).

    Parameter schedulers must be epoch based (``by_epoch=True``); their
    unit is ``schedule_unit``: by default a round (every local step of
    round ``r`` uses the value of epoch ``r``), or a local epoch (local
    epoch ``e`` of round ``r`` uses epoch ``r x local_epochs + e``, so the
    schedule follows total local progress whatever the split into rounds
    and local epochs; :mod:`~decssl_mm.federated.local_schedule`).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): ``train_dataloader``; its dataset
            must be a ``ClientPartitionedDataset``. Its batch sampler is
            replaced by :class:`ClientRoundBatchSampler`.
        rounds (int): Number of communication rounds.
        local_epochs (int, optional): Local epochs per client per round.
        local_iters (int, optional): Local iterations per client per round
            (instead of ``local_epochs``).
        participation (float, optional): Fraction of clients per round.
        clients_per_round (int, optional): Clients per round (instead of
            ``participation``). Neither: every client, every round.
        sampler (dict, optional): Client sampler config. Defaults to
            ``dict(type='UniformClientSampler')``.
        aggregator (dict, optional): Aggregator config, given to the server.
            Defaults to ``dict(type='FedAvg')``.
        server (dict, optional): Server config. Defaults to
            ``dict(type='FedAvgServer')``.
        trainer (dict, optional): Client trainer config. Defaults to
            ``dict(type='ClientTrainer')``.
        client_state (dict, optional): Client state store config. Defaults
            to ``dict(type='DiskClientStateStore')``.
        optimizer_policy (str): ``'reset'`` or ``'keep'``, given to the
            trainer. Defaults to ``'reset'``.
        schedule_unit (str): What one epoch of the parameter schedulers is:
            ``'round'`` or ``'local_epoch'`` (then a scheduler over the
            whole run has ``T_max = rounds x local_epochs``; with
            ``local_iters`` a round's local work counts as one unit).
            Defaults to ``'round'``.
        seed (int, optional): Seed of data order and augmentations of every
            (round, client). Defaults to the runner's seed.
        client_retries (int): Times a failing client is retried in the same
            round before it is dropped, given to the trainer. Defaults to 0.
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
        if schedule_unit not in SCHEDULE_UNITS:
            raise ValueError(f'train_cfg.schedule_unit must be one of '
                             f'{SCHEDULE_UNITS}, got {schedule_unit!r}.')
        self.schedule_unit = schedule_unit
        # per-local-epoch stepping is only needed with several local epochs
        self.local_schedule = LocalEpochSchedule(local_epochs) if (
            schedule_unit == 'local_epoch' and local_epochs is not None
            and int(local_epochs) > 1) else None
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

        sampler = dict(sampler or {})
        if participation is not None:
            sampler['participation'] = participation
        if clients_per_round is not None:
            sampler['clients_per_round'] = clients_per_round
        self.client_sampler = build_checked(
            CLIENT_SAMPLERS, sampler, 'train_cfg.sampler',
            'UniformClientSampler', seed=self.seed)
        self.clients_per_round = self.client_sampler.num_sampled(
            self.num_clients)
        self.trainer = build_checked(
            CLIENT_TRAINERS, trainer, 'train_cfg.trainer', 'ClientTrainer',
            optimizer_policy=optimizer_policy, retries=client_retries)
        self.server = build_checked(SERVERS, server, 'train_cfg.server',
                                    'FedAvgServer', aggregator=aggregator)
        self.store = build_checked(CLIENT_STATE_STORES, client_state,
                                   'train_cfg.client_state',
                                   'DiskClientStateStore')
        self.store.setup(runner.work_dir)
        self.trainer.setup(self)
        self._max_iters = self._max_epochs * \
            self.planner.expected_round_iters(self.clients_per_round)
        if hasattr(self.dataset, 'metainfo'):
            runner.visualizer.dataset_meta = self.dataset.metainfo
        if not any(isinstance(h, FederatedStateHook) for h in runner.hooks):
            runner.register_hook(FederatedStateHook(), priority='VERY_HIGH')

    # ------------------------------------------------------------ properties
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

    # --------------------------------------------------------------- the run
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
        self.server.begin_round(round_idx, mine)
        self.model.train()
        self.trainer.round_errors = {}
        self.trainer.begin_round(round_idx)
        if self.local_schedule is not None:
            self.local_schedule.begin_round(self.runner.param_schedulers)
        outcome = self.run_clients(round_idx, mine)
        self._end_round(round_idx, participants, *outcome)
        if self.local_schedule is not None:
            self.local_schedule.end_round()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self.timer.log(round_idx, self._max_epochs, len(participants),
                       self.comm.total)

    def run_clients(self, round_idx: int, mine: Sequence[int]
                    ) -> Tuple[List[int], List[int], Dict[int, int]]:
        """Train this rank's clients of the round, in order.

        Returns:
            tuple: ``(trained, failed, {client: round of its new state})``.
        """
        # a client without samples is skipped (documented)
        plans = [(k, self.client_batches(k, round_idx)) for k in mine
                 if self.client_sizes[k] > 0]
        self.batch_sampler.set_plan([b for _, bs in plans for b in bs])
        stream = RoundStream(self.dataloader, [b for _, bs in plans
                                               for b in bs]) if plans else None
        ok, failed, written, batch_idx = [], [], {}, 0
        for k, batches in plans:
            self.runner.call_hook('before_client', client_id=int(k),
                                  round_idx=round_idx)
            done, batch_idx, saved = self.trainer.run_client(
                k, batches, round_idx, batch_idx, stream)
            (ok if done else failed).append(k)
            if saved:
                written[k] = round_idx
            self.runner.call_hook('after_client', client_id=int(k),
                                  round_idx=round_idx, trained=done)
        self.trainer.settle_state_writes(round_idx, written)
        return ok, failed, written

    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """One local iteration; the usual train-iter hooks fire around it."""
        self.runner.call_hook(
            'before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.trainer.train_step(data_batch)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1
        if self.local_schedule is not None:
            self.local_schedule.after_step()

    def begin_client_schedule(self, client_id: int) -> None:
        """A client's local training starts (or restarts): with
        ``schedule_unit='local_epoch'``, the round-start hyper-parameters.
        """
        if self.local_schedule is not None:
            self.local_schedule.begin_client(
                self.planner.num_client_batches(
                    int(self.client_sizes[client_id])))

    # ----------------------------------------------------------------- setup
    def _setup(self) -> None:
        self.server.setup(self)
        log_run_start(self)
        if self._pending_state is not None:
            self._apply_resumed_state(self._pending_state)
            self._pending_state = None
        if get_rank() == 0:  # every rank waits: no new state is mistaken
            self.store.remove_stale(resumed=self._epoch > 0)  # for a stale one
        barrier()

    # ------------------------------------------------------------- round end
    def _end_round(self, round_idx: int, participants: np.ndarray,
                   ok: List[int], failed: List[int],
                   written: Dict[int, int]) -> None:
        outcome = gather_outcome(ok, failed, written,
                                 self.trainer.round_errors)
        self.store.merge_index(outcome.written)
        raise_if_all_failed(round_idx, outcome)
        extra = self.server.finish_round(round_idx)
        self._load_global_into_model()
        self._rounds_done = round_idx + 1
        scalars = self.comm.count(self.exchanged_bytes, len(participants),
                                  outcome, extra.pop('comm/extra_bytes', 0))
        scalars.update(extra)
        hub = self.runner.message_hub
        hub.update_info('federated/round', round_idx)
        for key, val in scalars.items():
            hub.update_scalar(f'train/{key}', val)
        if get_rank() == 0:
            self.runner.visualizer.add_scalars(scalars, step=round_idx + 1)

    def _load_global_into_model(self) -> None:
        with torch.no_grad():
            for k, t in self.model.state_dict().items():
                t.copy_(self.global_state[k])

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Loop state for the checkpoint (plain tensors and numbers)."""
        self.store.commit(self._rounds_done)
        state = {
            'round': int(self._rounds_done),
            'client_states': self.store.state_dict(),
            'comm_bytes_total': int(self.comm.total),
        }
        state.update(self.server.state_dict())  # 'aggregator', 'extra'
        return state

    def load_state_dict(self, state: dict) -> None:
        """Keep a checkpoint's loop state; applied when training starts."""
        self._pending_state = state

    def _apply_resumed_state(self, state: dict) -> None:
        if self._epoch == 0:  # `load_from`, not resume: start fresh
            return
        if int(state['round']) != self._epoch:
            raise ValueError(
                f"Checkpoint loop state is for round {state['round']} but "
                f'the runner resumed at round {self._epoch}.')
        self.server.load_state_dict(state)
        self.store.load_state_dict(state['client_states'], self._epoch)
        for r, index in checkpoint_indices(self.runner,
                                           skip=self._epoch).items():
            self.store.adopt_checkpoint(r, index)
        self.comm.total = int(state.get('comm_bytes_total', 0))
        self._rounds_done = self._epoch

