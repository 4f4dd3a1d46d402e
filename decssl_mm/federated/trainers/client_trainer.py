"""One client's local work in a round: the place a local objective lives."""
import logging
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log

from decssl_mm.registry import CLIENT_TRAINERS
from decssl_mm.utils.rng import seed_all
from ..client_isolation import client_local_ops
from ..round_data import ClientSlice, client_loader
from ..state_view import ModelStateView

StateDict = Dict[str, torch.Tensor]
OPTIMIZER_POLICIES = ('reset', 'keep')
_SEED_TAG = 7  # separates the local-training RNG stream of (round, client)


class StateNotSaved(Exception):
    """A client's update is in the aggregate; its local state was not saved.

    Retrying would add the update twice: the client counts as trained and
    keeps its previous state version.

    Args:
        batch_idx (int): Round batch index after the client's batches.
        cause (Exception): The error of the write.
    """

    def __init__(self, batch_idx: int, cause: Exception) -> None:
        super().__init__(f'{type(cause).__name__}: {cause}')
        self.batch_idx = batch_idx


@CLIENT_TRAINERS.register_module()
class ClientTrainer:
    """Train one client locally (plain local objective, as in FedAvg).

    For a client of round ``r`` it loads, IN PLACE into the working model,
    the start weights the server gives (:meth:`start_weights`) and the
    client's local state (tensors that are not exchanged, and its optimizer
    state under ``optimizer_policy='keep'``); seeds torch/numpy/random from
    ``(seed, r, client)``; runs the client's batches through the loop's
    ``run_iter`` (the usual train-iter hooks fire), each step being
    :meth:`train_step`; hands the trained model to the server; and writes
    what persists (:meth:`local_state`) to the client-state store. A client
    that fails is retried ``retries`` times on the same batches.

    Subclasses change one thing each: :meth:`start_weights` (e.g. FedEMA),
    :meth:`train_step` (e.g. FedProx's proximal term), :meth:`upload`,
    :meth:`local_state`.

    Args:
        optimizer_policy (str): ``'reset'`` (fresh optimizer state for each
            client, as in FedAvg) or ``'keep'`` (a client's optimizer state
            persists between its rounds). Defaults to ``'reset'``.
        retries (int): Times a failing client is retried in the same round
            before it is dropped. Defaults to 0.
    """

    def __init__(self, optimizer_policy: str = 'reset',
                 retries: int = 0) -> None:
        if optimizer_policy not in OPTIMIZER_POLICIES:
            raise ValueError(f'train_cfg.optimizer_policy must be one of '
                             f'{OPTIMIZER_POLICIES}, got '
                             f'{optimizer_policy!r}.')
        if int(retries) != retries or retries < 0:
            raise ValueError('train_cfg.client_retries must be >= 0.')
        self.optimizer_policy = optimizer_policy
        self.retries = int(retries)
        self.loop = None
        self.state_view: Optional[ModelStateView] = None
        #: ``client -> last error`` of this rank's failed clients this round
        self.round_errors: Dict[int, str] = {}

    def setup(self, loop) -> None:
        """Attach to the loop (model, runner, server, store, dataloader)."""
        self.loop = loop

    def begin_round(self, round_idx: int) -> None:
        """A round starts: index the working model's state anew (see
        :class:`ModelStateView`; a model changed between rounds is read
        as it is now)."""
        if self.state_view is None or self.state_view.module is not \
                self.model:
            self.state_view = ModelStateView(self.model)
        else:
            self.state_view.refresh()

    def model_state(self) -> StateDict:
        """The working model's state-dict tensors (not detached: read them
        under ``torch.no_grad()``)."""
        if self.state_view is None:
            self.begin_round(-1)
        return self.state_view.tensors()

    @property
    def model(self) -> torch.nn.Module:
        """The working model (unwrapped)."""
        return self.loop.model

    # --------------------------------------------------------------- a client
    def run_client(self, client_id: int, batches: List, round_idx: int,
                   batch_idx: int, stream: Iterator) -> Tuple[bool, int, bool]:
        """Train a client, retrying on failure.

        The first attempt reads the client's batches from the round's
        stream; a retry reads them again through a single-process loader.

        Returns:
            tuple: ``(trained, batch_idx, state_saved)``.
        """
        for attempt in range(self.retries + 1):
            data = ClientSlice(stream, len(batches)) if attempt == 0 \
                else client_loader(self.loop.dataloader, batches)
            try:
                batch_idx, saved = self.train_client(client_id, data,
                                                     round_idx, batch_idx)
                return True, batch_idx, saved
            except StateNotSaved as e:
                print_log(
                    f'Round {round_idx}: client {client_id}: its update is '
                    f'aggregated, but its local state could not be saved '
                    f'({e}); it keeps its previous state.',
                    logger='current', level=logging.WARNING)
                return True, e.batch_idx, False
            except Exception as e:  # noqa: B902 - one client must not
                # stop the run (nor, under torch.distributed, hang the
                # other ranks); if every client fails the round stops it.
                if isinstance(data, ClientSlice):
                    data.drain()
                self.round_errors[int(client_id)] = \
                    f'{type(e).__name__}: {e}'
                what = 'retrying' if attempt < self.retries else \
                    'dropping it from the round'
                print_log(
                    f'Round {round_idx}: client {client_id} failed '
                    f'(attempt {attempt + 1}/{self.retries + 1}: '
                    f'{type(e).__name__}: {e}); {what}.',
                    logger='current', level=logging.WARNING)
        return False, batch_idx, False

    def train_client(self, client_id: int, data, round_idx: int,
                     batch_idx: int) -> Tuple[int, bool]:
        """One attempt: load, train on ``data``, hand over, save state.

        Returns:
            tuple: ``(batch_idx, state_written)``; no state is written for
            a client whose local state holds nothing (see
            :meth:`DiskClientStateStore.needs_save`).
        """
        loop = self.loop
        self.load_client(client_id, round_idx)
        loop.runner.message_hub.update_info('client_id', int(client_id))
        for data_batch in data:
            loop.run_iter(batch_idx, data_batch)
            batch_idx += 1
        with torch.no_grad():
            state = self.model_state()
            loop.server.add(client_id, *self.upload(
                client_id, state, int(loop.client_sizes[client_id])))
        try:
            with torch.no_grad():
                local = self.local_state(client_id, state)
            if not loop.store.needs_save(client_id, local):
                return batch_idx, False
            loop.store.save(client_id, local, round_idx)
        except Exception as e:  # noqa: B902 - the update is aggregated
            raise StateNotSaved(batch_idx, e) from e
        return batch_idx, True

    def settle_state_writes(self, round_idx: int,
                            written: Dict[int, int]) -> None:
        """Wait for client-state writes still in flight (a store with
        ``write_behind``); a client whose write failed is removed from
        ``written`` and keeps its previous state (its update is in the
        aggregate).

        Args:
            round_idx (int): The round.
            written (dict[int, int]): ``client -> round`` of the states
                written this round, updated in place.
        """
        flush = getattr(self.loop.store, 'flush', None)
        for k, err in (flush() if flush is not None else {}).items():
            written.pop(k, None)
            print_log(
                f'Round {round_idx}: client {k}: its update is aggregated, '
                f'but its local state could not be saved ({err}); it keeps '
                'its previous state.', logger='current',
                level=logging.WARNING)

    # ------------------------------------------------------------ start state
    def load_client(self, client_id: int, round_idx: int) -> None:
        """Load the start weights and the client's local state in place."""
        saved = self.loop.store.load(client_id)
        start = self.start_weights(client_id, saved)
        with torch.no_grad():
            sd = self.model_state()
            copy_state(sd, start)
            if saved is not None:
                for k, t in saved.get('local', {}).items():
                    if k in sd:
                        sd[k].copy_(t)
        self.restore_optimizer(saved)
        self.loop.begin_client_schedule(client_id)
        self.loop.server.on_client_start(client_id, self.model)
        self.seed_client(client_id, round_idx)

    def start_weights(self, client_id: int,
                      saved: Optional[dict]) -> StateDict:
        """The weights a client starts from: the server's model for it.

        Args:
            client_id (int): The client.
            saved (dict, optional): Its local state (None before its first
                round).
        """
        return self.loop.server.start_state(client_id)

    def seed_client(self, client_id: int, round_idx: int) -> None:
        """Seed torch, numpy and random from ``(seed, round, client)``."""
        ss = np.random.SeedSequence([self.loop.seed, int(round_idx),
                                     int(client_id), _SEED_TAG])
        seed_all(int(ss.generate_state(1)[0]))

    def restore_optimizer(self, saved: Optional[dict]) -> None:
        """Fresh optimizer state, or the client's own under ``'keep'``."""
        optimizer = self.loop.runner.optim_wrapper.optimizer
        optimizer.state.clear()
        if self.optimizer_policy == 'keep' and saved is not None and \
                saved.get('optimizer'):
            sd = optimizer.state_dict()
            sd['state'] = saved['optimizer']
            optimizer.load_state_dict(sd)

    # ------------------------------------------------------------- one step
    def train_step(self, data_batch) -> Dict[str, torch.Tensor]:
        """One local optimisation step (the model's own ``train_step``)."""
        runner = self.loop.runner
        with client_local_ops(self.model):
            return runner.model.train_step(
                data_batch, optim_wrapper=runner.optim_wrapper)

    # ------------------------------------------------------ what goes, stays
    def upload(self, client_id: int, state: StateDict,
               num_samples: int) -> Tuple[StateDict, int]:
        """What the client sends the server: its model and sample count.

        The place for what a client does to its update before sending it
        (e.g. compression, privacy noise); the local state keeps the
        trained model either way.
        """
        return state, num_samples

    def local_state(self, client_id: int, state: StateDict) -> dict:
        """What persists on the client until it is sampled again.

        The tensors that are not exchanged, the optimizer state under
        ``'keep'``, and what the server keeps per client (e.g. FeatARC's
        features).
        """
        exchanged = set(self.loop.server.exchanged_keys)
        out = {
            'local': {
                k: v.detach().cpu().clone()
                for k, v in state.items() if k not in exchanged
            }
        }
        if self.optimizer_policy == 'keep':
            out['optimizer'] = self._optimizer_state_cpu()
        out.update(self.loop.server.client_extras(client_id, self.model))
        return out

    def _optimizer_state_cpu(self) -> dict:
        st = self.loop.runner.optim_wrapper.optimizer.state_dict()['state']
        return {
            int(i): {
                n: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                for n, v in s.items()
            }
            for i, s in st.items()
        }


def copy_state(dst: StateDict, src: StateDict) -> None:
    """Copy ``src[k]`` into every tensor ``dst[k]`` in place.

    One fused ``torch._foreach_copy_`` where torch has it (one call for all
    tensors instead of one per tensor), a loop otherwise.

    Args:
        dst (dict[str, Tensor]): Tensors to overwrite (e.g. the model's).
        src (dict[str, Tensor]): New values (any device, same shapes).
    """
    keys = list(dst)
    outs = [dst[k] for k in keys]
    ins = [src[k] for k in keys]
    try:
        torch._foreach_copy_(outs, ins)
    except (AttributeError, RuntimeError, TypeError):
        for o, i in zip(outs, ins):
            o.copy_(i)
