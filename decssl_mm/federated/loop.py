"""The federated training loop: one mmengine epoch is one round."""
import copy
import logging
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import barrier, get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from decssl_mm.registry import (AGGREGATORS, CLIENT_SAMPLERS,
                                CLIENT_STATE_STORES, LOOPS)
from .aggregators import BaseAggregator
from .batch_plan import client_round_plan, num_epoch_batches
from .client_isolation import client_local_ops
from .client_sampler import UniformClientSampler
from .client_state import DiskClientStateStore
from .dist_utils import all_gather_objects, all_reduce_tensors
from .rank_assignment import assign_clients_to_ranks
from .round_batch_sampler import ClientRoundBatchSampler

StateDict = Dict[str, torch.Tensor]
_OPTIMIZER_POLICIES = ('reset', 'keep')


class _StateNotSaved(Exception):
    """A client's update is in the aggregate; its local state was not saved.

    Retrying would add the update twice: the client counts as trained and
    keeps its previous state version.
    """

    def __init__(self, batch_idx: int, cause: Exception) -> None:
        super().__init__(f'{type(cause).__name__}: {cause}')
        self.batch_idx = batch_idx



class _ClientSlice:
    """The next ``n`` batches of a round's data stream: one client's share.

    The round's batches of every client of this rank come from ONE iterator
    over the DataLoader, so its workers prefetch the next client's first
    batches while the current client trains its last ones (no pipeline
    bubble at client boundaries).

    Args:
        stream (Iterator): The round's iterator over the DataLoader.
        n (int): Number of batches of the client.
    """

    def __init__(self, stream, n: int) -> None:
        self.stream = stream
        self.left = int(n)

    def __iter__(self):
        while self.left > 0:
            self.left -= 1  # a batch that fails to load is consumed too
            yield next(self.stream)

    def drain(self) -> None:
        """Skip the client's remaining batches (after it failed)."""
        while self.left > 0:
            self.left -= 1
            try:
                next(self.stream)
            except StopIteration:
                return
            except Exception:  # noqa: B902 - a bad batch of a dropped client
                continue

def _build(registry, cfg: Union[dict, object], key: str, default: dict):
    """Build ``cfg`` from ``registry`` with an error that names ``key``."""
    if cfg is None:
        cfg = default
    if not isinstance(cfg, dict):
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.setdefault('type', default['type'])
    if registry.get(cfg['type']) is None:
        names = sorted(registry.module_dict)
        raise KeyError(f"train_cfg.{key}.type {cfg['type']!r} is not "
                       f'registered; registered: {names}')
    return registry.build(cfg)


@LOOPS.register_module()
class FederatedTrainLoop(BaseLoop):
    """Federated training: FedAvg-style rounds over client-partitioned data.

    Round ``r`` (mmengine's epoch ``r``): the client sampler draws the
    participants; they are shared among the ranks by workload; each rank
    trains its clients one after another: the working model is loaded IN
    PLACE with the global weights and the client's local state, trained
    locally through ``runner.model.train_step`` (so logger, timer and
    parameter-scheduler hooks fire), then its model enters the aggregator's
    running sum and its local state goes to the on-disk client store. The
    aggregator all-reduces the sums over ranks and produces the new global
    model, which is loaded into the working model before the epoch hooks
    (checkpoint, validation) run.

    Learning-rate policy: every local step of round ``r`` uses the
    schedule's value at epoch ``r``; parameter schedulers must therefore be
    epoch based (``by_epoch=True``). Optimizer-state policy: ``'reset'``
    (each client starts its local training with fresh optimizer state, as
    in FedAvg) or ``'keep'`` (a client's optimizer state persists in its
    client state between its rounds).

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
        aggregator (dict, optional): Aggregator config. Defaults to
            ``dict(type='FedAvg')``.
        client_state (dict, optional): Client state store config. Defaults
            to ``dict(type='DiskClientStateStore')``.
        optimizer_policy (str): ``'reset'`` or ``'keep'``. Defaults to
            ``'reset'``.
        seed (int, optional): Seed of data order and augmentations of every
            (round, client). Defaults to the runner's seed.
        client_retries (int): Times a failing client is retried in the same
            round before it is dropped. Defaults to 0.
        val_begin (int): First round after which to validate.
        val_interval (int): Validation interval in rounds.
    """

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
                 client_state: Optional[dict] = None,
                 optimizer_policy: str = 'reset',
                 seed: Optional[int] = None,
                 client_retries: int = 0,
                 val_begin: int = 1,
                 val_interval: int = 1) -> None:
        self._validate_args(rounds, local_epochs, local_iters,
                            optimizer_policy, client_retries)
        if isinstance(dataloader, dict):
            dataloader = self._with_round_batch_sampler(dataloader)
        super().__init__(runner, dataloader)
        self.dataset = self.dataloader.dataset
        if not hasattr(self.dataset, 'client_indices'):
            raise TypeError(
                'train_dataloader.dataset must be a ClientPartitionedDataset '
                '(dict(type="ClientPartitionedDataset", dataset=..., '
                f'partition=...)), got {type(self.dataset).__name__}.')
        self.batch_sampler = self.dataloader.batch_sampler
        if not isinstance(self.batch_sampler, ClientRoundBatchSampler):
            raise TypeError('train_dataloader.batch_sampler must be a '
                            'ClientRoundBatchSampler, got '
                            f'{type(self.batch_sampler).__name__}.')
        self.client_sizes = np.asarray(self.dataset.client_sizes, np.int64)
        self.num_clients = len(self.client_sizes)

        self._max_epochs = int(rounds)
        self.local_epochs = local_epochs
        self.local_iters = local_iters
        self.optimizer_policy = optimizer_policy
        self.client_retries = int(client_retries)
        self.seed = int(runner.seed if seed is None else seed)
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self._epoch = 0
        self._iter = 0
        self._rounds_done = 0

        sampler = copy.deepcopy(sampler) if sampler else {}
        if participation is not None:
            sampler['participation'] = participation
        if clients_per_round is not None:
            sampler['clients_per_round'] = clients_per_round
        sampler.setdefault('seed', self.seed)
        self.client_sampler: UniformClientSampler = _build(
            CLIENT_SAMPLERS, sampler, 'sampler',
            dict(type='UniformClientSampler'))
        self.clients_per_round = self.client_sampler.num_sampled(
            self.num_clients)
        self.aggregator: BaseAggregator = _build(AGGREGATORS, aggregator,
                                                 'aggregator',
                                                 dict(type='FedAvg'))
        self.store: DiskClientStateStore = _build(
            CLIENT_STATE_STORES, client_state, 'client_state',
            dict(type='DiskClientStateStore'))
        self.store.setup(runner.work_dir)

        self.global_state: StateDict = {}
        self.exchanged_keys: List[str] = []
        self.exchanged_bytes = 0
        self.comm_bytes_total = 0
        self._pending_state: Optional[dict] = None
        self._round_times: List[float] = []
        #: ``client -> last error`` of this rank's failed clients this round
        self._round_errors: Dict[int, str] = {}
        self._max_iters = self._max_epochs * self._expected_round_iters()

        if hasattr(self.dataset, 'metainfo'):
            runner.visualizer.dataset_meta = self.dataset.metainfo
        from .federated_hook import FederatedStateHook
        if not any(isinstance(h, FederatedStateHook) for h in runner.hooks):
            runner.register_hook(FederatedStateHook(), priority='VERY_HIGH')

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _validate_args(rounds, local_epochs, local_iters, optimizer_policy,
                       client_retries) -> None:
        if int(rounds) != rounds or rounds < 1:
            raise ValueError(
                f'train_cfg.rounds must be a positive integer, got {rounds}.')
        if (local_epochs is None) == (local_iters is None):
            raise ValueError('Give exactly one of train_cfg.local_epochs and '
                             'train_cfg.local_iters, got local_epochs='
                             f'{local_epochs}, local_iters={local_iters}.')
        for name, v in (('local_epochs', local_epochs), ('local_iters',
                                                          local_iters)):
            if v is not None and (int(v) != v or v < 1):
                raise ValueError(f'train_cfg.{name} must be a positive '
                                 f'integer, got {v}.')
        if optimizer_policy not in _OPTIMIZER_POLICIES:
            raise ValueError(f'train_cfg.optimizer_policy must be one of '
                             f'{_OPTIMIZER_POLICIES}, got {optimizer_policy!r}.')
        if client_retries < 0:
            raise ValueError('train_cfg.client_retries must be >= 0.')

    @staticmethod
    def _with_round_batch_sampler(cfg: dict) -> dict:
        cfg = copy.deepcopy(cfg)
        bs = cfg.get('batch_sampler') or {}
        if bs.get('type', 'ClientRoundBatchSampler') not in (
                'ClientRoundBatchSampler', ClientRoundBatchSampler):
            raise ValueError('train_dataloader.batch_sampler is set by the '
                             'federated loop; remove '
                             f"{bs.get('type')!r} from the config.")
        bs['type'] = 'ClientRoundBatchSampler'
        if 'drop_last' in cfg:
            bs.setdefault('drop_last', cfg.pop('drop_last'))
        cfg['batch_sampler'] = bs
        cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
        cfg.setdefault('collate_fn', dict(type='default_collate'))
        return cfg

    @property
    def max_epochs(self) -> int:
        """Number of rounds."""
        return self._max_epochs

    @property
    def rounds(self) -> int:
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

    # ---------------------------------------------------------------- planning
    def _num_client_batches(self, n: int) -> int:
        if self.local_iters is not None:
            return int(self.local_iters)
        return num_epoch_batches(n, self.batch_sampler.batch_size,
                                 self.batch_sampler.drop_last) * int(
                                     self.local_epochs)

    def _expected_round_iters(self) -> int:
        mean = float(np.mean([self._num_client_batches(int(n))
                              for n in self.client_sizes]))
        return max(1, int(round(mean * self.clients_per_round /
                                get_world_size())))

    def client_batches(self, client_id: int,
                       round_idx: int) -> List[List[Tuple[int, int]]]:
        """The batches of ``(global index, augmentation seed)`` of a client.

        A pure function of ``(seed, round, client)``; see
        :func:`decssl_mm.federated.batch_plan.client_round_plan`.
        """
        return client_round_plan(
            self.dataset.client_indices(client_id),
            self.seed,
            round_idx,
            client_id,
            self.batch_sampler.batch_size,
            local_epochs=self.local_epochs,
            local_iters=self.local_iters,
            drop_last=self.batch_sampler.drop_last)

    # -------------------------------------------------------------- the run
    def run(self) -> torch.nn.Module:
        """Run all (remaining) rounds."""
        self._check_param_schedulers()
        self.runner.call_hook('before_train')
        self._setup_global_state()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            if (self.runner.val_loop is not None
                    and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0
                         or self._epoch == self._max_epochs)):
                self.runner.val_loop.run()
        if get_rank() == 0:
            self.store.prune()  # versions older than the last checkpoint
        self.runner.call_hook('after_train')
        return self.runner.model

    def _check_param_schedulers(self) -> None:
        scheds = self.runner.param_schedulers or []
        if isinstance(scheds, dict):
            scheds = [s for v in scheds.values() for s in v]
        for s in scheds:
            if not getattr(s, 'by_epoch', True):
                raise ValueError(
                    f'param_scheduler {type(s).__name__} is iteration based; '
                    'the federated loop needs by_epoch=True schedulers (the '
                    'learning rate of a round follows the round index).')

    def _setup_global_state(self) -> None:
        sd = self.model.state_dict()
        self.global_state = {k: v.detach().clone() for k, v in sd.items()}
        self.exchanged_keys = self.aggregator.select_keys(list(sd))
        self.exchanged_bytes = sum(
            sd[k].numel() * sd[k].element_size() for k in self.exchanged_keys)
        local = [k for k in sd if k not in set(self.exchanged_keys)]
        print_log(
            f'Federated: {self.num_clients} clients, '
            f'{self.clients_per_round} per round, {self._max_epochs} rounds; '
            f'{len(self.exchanged_keys)} tensors exchanged '
            f'({self.exchanged_bytes / 2**20:.2f} MiB each way per client), '
            f'{len(local)} stay on clients'
            + (f' (e.g. {local[:4]})' if local else ''),
            logger='current')
        empty = np.flatnonzero(self.client_sizes == 0)
        if empty.size:
            print_log(f'Federated: clients {empty.tolist()[:20]} hold no '
                      'samples; they are skipped whenever sampled.',
                      logger='current', level=logging.WARNING)
        if self._pending_state is not None:
            self._apply_resumed_state(self._pending_state)
            self._pending_state = None
        self._remove_stale_client_states()

    def _remove_stale_client_states(self) -> None:
        """Delete client-state files that the starting run cannot use.

        On resume: versions newer than the checkpoint (the interrupted round);
        on a fresh start: every file (e.g. of a run killed before its first
        checkpoint). Rank 0 deletes; every rank waits for it, so no rank
        writes a new state that rank 0 could mistake for a stale one.
        """
        if get_rank() == 0:
            n = self.store.remove_orphans()
            if n:
                what = 'of the interrupted round' if self._epoch else \
                    'left in the work dir by an earlier run'
                print_log(f'Removed {n} client-state files {what}.',
                          logger='current')
        barrier()

    def run_epoch(self) -> None:
        """Run one communication round."""
        t0 = time.time()
        self.runner.call_hook('before_train_epoch')
        if get_rank() == 0:
            self.store.prune()
        round_idx = self._epoch
        participants = self.client_sampler.sample(round_idx,
                                                  self.client_sizes)
        mine = self.begin_round(round_idx, participants)
        self.model.train()
        written: Dict[int, int] = {}
        ok, failed = [], []
        self._round_errors = {}
        batch_idx = 0
        # a client without samples is skipped (documented)
        plans = [(k, self.client_batches(k, round_idx)) for k in mine
                 if self.client_sizes[k] > 0]
        self.batch_sampler.set_plan([b for _, bs in plans for b in bs])
        stream = iter(self.dataloader) if plans else None
        for k, batches in plans:
            done, batch_idx, saved = self._train_client_with_retries(
                k, batches, round_idx, batch_idx, stream)
            if done:
                ok.append(k)
                if saved:
                    written[k] = round_idx
            else:
                failed.append(k)
        self._end_round(round_idx, participants, ok, failed, written)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self._log_round(round_idx, len(participants), time.time() - t0)

    def begin_round(self, round_idx: int,
                    participants: np.ndarray) -> List[int]:
        """Prepare a round; return the clients this rank trains.

        Subclasses (e.g. clustered aggregation) extend this.
        """
        workloads = [
            self._num_client_batches(int(self.client_sizes[k]))
            for k in participants
        ]
        shares = assign_clients_to_ranks(participants, workloads,
                                         get_world_size())
        mine = shares[get_rank()]
        self.batch_sampler.round_length = sum(
            self._num_client_batches(int(self.client_sizes[k])) for k in mine)
        self.aggregator.begin_round(self.global_state)
        return mine

    def start_state(self, client_id: int) -> StateDict:
        """The global model a client starts its local training from."""
        return self.global_state

    def _train_client_with_retries(self, client_id: int, batches: list,
                                   round_idx: int, batch_idx: int,
                                   stream) -> Tuple[bool, int, bool]:
        """Train a client, retrying on failure.

        The first attempt reads the client's batches from the round's
        stream; a retry reads them again through a single-process loader
        (the augmentation seeds travel with the indices, so the batches are
        the same).

        Returns:
            tuple: ``(trained, batch_idx, state_saved)``.
        """
        for attempt in range(self.client_retries + 1):
            data = _ClientSlice(stream, len(batches)) if attempt == 0 \
                else self._client_loader(batches)
            try:
                batch_idx = self._train_client(client_id, data, round_idx,
                                               batch_idx)
                return True, batch_idx, True
            except _StateNotSaved as e:
                print_log(
                    f'Round {round_idx}: client {client_id}: its update is '
                    f'aggregated, but its local state could not be saved '
                    f'({e}); it keeps its previous state.',
                    logger='current',
                    level=logging.WARNING)
                return True, e.batch_idx, False
            except Exception as e:  # noqa: B902 - one client must not
                # stop the run (nor, under torch.distributed, hang the
                # other ranks); if every client fails the round stops it.
                if isinstance(data, _ClientSlice):
                    data.drain()
                self._round_errors[int(client_id)] = \
                    f'{type(e).__name__}: {e}'
                what = 'retrying' if attempt < self.client_retries else \
                    'dropping it from the round'
                print_log(
                    f'Round {round_idx}: client {client_id} failed '
                    f'(attempt {attempt + 1}/{self.client_retries + 1}: '
                    f'{type(e).__name__}: {e}); {what}.',
                    logger='current',
                    level=logging.WARNING)
        return False, batch_idx, False

    def _client_loader(self, batches: list) -> DataLoader:
        """A single-process loader of a client's batches (for retries)."""
        dl = self.dataloader
        return DataLoader(dl.dataset, batch_sampler=batches, num_workers=0,
                          collate_fn=dl.collate_fn, pin_memory=dl.pin_memory)

    def _train_client(self, client_id: int, data, round_idx: int,
                      batch_idx: int) -> int:
        self.load_client(client_id, round_idx)
        self.runner.message_hub.update_info('client_id', int(client_id))
        model = self.model
        for data_batch in data:
            self.run_iter(batch_idx, data_batch, model)
            batch_idx += 1
        state = model.state_dict()
        self.add_client_update(client_id, state,
                               int(self.client_sizes[client_id]))
        try:
            self.store.save(client_id,
                            self.client_local_state(client_id, state),
                            round_idx)
        except Exception as e:  # noqa: B902 - the update is aggregated
            raise _StateNotSaved(batch_idx, e) from e
        return batch_idx

    def run_iter(self, idx: int, data_batch: Sequence[dict],
                 model: torch.nn.Module) -> None:
        """One local iteration; the usual train-iter hooks fire around it."""
        self.runner.call_hook(
            'before_train_iter', batch_idx=idx, data_batch=data_batch)
        with client_local_ops(model):
            outputs = self.runner.model.train_step(
                data_batch, optim_wrapper=self.runner.optim_wrapper)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1

    # ----------------------------------------------------- client state
    def load_client(self, client_id: int, round_idx: int) -> None:
        """Load the start weights and the client's local state in place."""
        model = self.model
        start = self.start_state(client_id)
        saved = self.store.load(client_id)
        with torch.no_grad():
            sd = model.state_dict()
            for k, t in sd.items():
                t.copy_(start[k])
            if saved is not None:
                for k, t in saved.get('local', {}).items():
                    if k in sd:
                        sd[k].copy_(t)
        self._restore_optimizer(saved)
        ss = np.random.SeedSequence([self.seed, int(round_idx),
                                     int(client_id), 7])
        s = int(ss.generate_state(1)[0])
        torch.manual_seed(s)
        np.random.seed(s)
        random.seed(s)

    def _restore_optimizer(self, saved: Optional[dict]) -> None:
        optimizer = self.runner.optim_wrapper.optimizer
        optimizer.state.clear()
        if self.optimizer_policy == 'keep' and saved is not None and \
                saved.get('optimizer'):
            sd = optimizer.state_dict()
            sd['state'] = saved['optimizer']
            optimizer.load_state_dict(sd)

    def client_local_state(self, client_id: int, state: StateDict) -> dict:
        """What persists on the client until it is sampled again."""
        exchanged = set(self.exchanged_keys)
        out = {
            'local': {
                k: v.detach().cpu().clone()
                for k, v in state.items() if k not in exchanged
            }
        }
        if self.optimizer_policy == 'keep':
            out['optimizer'] = self._optimizer_state_cpu()
        return out

    def _optimizer_state_cpu(self) -> dict:
        st = self.runner.optim_wrapper.optimizer.state_dict()['state']
        return {
            int(i): {
                n: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                for n, v in s.items()
            }
            for i, s in st.items()
        }

    def add_client_update(self, client_id: int, state: StateDict,
                          num_samples: int) -> None:
        """Feed a trained client model to the aggregator."""
        self.aggregator.add(client_id, state, num_samples)

    # ------------------------------------------------------------ round end
    def _end_round(self, round_idx: int, participants: np.ndarray,
                   ok: List[int], failed: List[int],
                   written: Dict[int, int]) -> None:
        gathered = all_gather_objects((ok, failed, written,
                                       self._round_errors))
        all_ok = [k for g in gathered for k in g[0]]
        all_failed = [k for g in gathered for k in g[1]]
        merged: Dict[int, int] = {}
        errors: Dict[int, str] = {}
        for g in gathered:
            merged.update(g[2])
            errors.update(g[3])
        self._merge_store_index(merged)
        if all_failed and not all_ok:
            shown = '; '.join(f'client {k}: {errors.get(k, "?")[:300]}'
                              for k in sorted(all_failed)[:3])
            raise RuntimeError(
                f'Round {round_idx}: every participating client failed '
                f'({sorted(all_failed)}); stopping. The last checkpoint '
                f'is intact (resume with --resume). Errors: {shown}')
        self.finish_round(round_idx)
        self._load_global_into_model()
        self._rounds_done = round_idx + 1
        n = len(all_ok)
        down = self.exchanged_bytes * len(participants)
        up = self.exchanged_bytes * n
        self.comm_bytes_total += down + up
        hub = self.runner.message_hub
        hub.update_info('federated/round', round_idx)
        scalars = {
            'comm/bytes_down': float(down),
            'comm/bytes_up': float(up),
            'comm/bytes_total': float(self.comm_bytes_total),
            'federated/clients_ok': float(n),
            'federated/clients_failed': float(len(all_failed)),
        }
        for key, val in scalars.items():
            hub.update_scalar(f'train/{key}', val)
        if get_rank() == 0:
            self.runner.visualizer.add_scalars(scalars, step=round_idx + 1)

    def _merge_store_index(self, merged: Dict[int, int]) -> None:
        before = dict(self.store.index)
        self.store.merge_index(merged)
        if get_rank() == 0:
            for k, r in merged.items():
                old = before.get(k)
                if old is not None and old != r and \
                        old != self.store.committed.get(k):
                    self.store._remove(self.store._path(k, old))

    def finish_round(self, round_idx: int) -> None:
        """Aggregate the round into the global model."""
        new = self.aggregator.finalize()
        if new is not None:
            for k, v in new.items():
                self.global_state[k].copy_(v)

    def _load_global_into_model(self) -> None:
        with torch.no_grad():
            for k, t in self.model.state_dict().items():
                t.copy_(self.global_state[k])

    def _log_round(self, round_idx: int, num_participants: int,
                   seconds: float) -> None:
        self._round_times.append(seconds)
        left = self._max_epochs - self._epoch
        eta = float(np.mean(self._round_times[-5:])) * left
        print_log(
            f'Round [{round_idx + 1}/{self._max_epochs}] '
            f'{num_participants} clients, {seconds:.1f} s, '
            f'comm total {self.comm_bytes_total / 2**20:.1f} MiB, '
            f'ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}',
            logger='current')

    # ---------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Loop state for the checkpoint (plain tensors and numbers)."""
        self.store.commit()
        return {
            'round': int(self._rounds_done),
            'aggregator': self.aggregator.state_dict(),
            'client_states': self.store.state_dict(),
            'comm_bytes_total': int(self.comm_bytes_total),
            'extra': self.extra_state_dict(),
        }

    def extra_state_dict(self) -> dict:
        """State of subclasses (e.g. cluster models)."""
        return {}

    def load_extra_state_dict(self, state: dict) -> None:
        """Restore :meth:`extra_state_dict`."""

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
        self.aggregator.load_state_dict(state.get('aggregator', {}))
        self.store.load_state_dict(state['client_states'])
        self.comm_bytes_total = int(state.get('comm_bytes_total', 0))
        self._rounds_done = self._epoch
        self.load_extra_state_dict(state.get('extra', {}))
