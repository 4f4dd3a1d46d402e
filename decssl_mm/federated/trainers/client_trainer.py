"""One client's local work in a round: the place a local objective lives."""
import copy
from typing import Callable, Dict, Iterable, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose

from decssl_mm.registry import CLIENT_TRAINERS
from decssl_mm.utils.rng import seed_all
from decssl_mm.utils.state_dict import StateDict, copy_state
from ..client_isolation import client_local_ops
from ..eval_view import eval_view_features
from ..messages import ClientResult, ClientTask

OPTIMIZER_POLICIES = ('reset', 'keep')
_SEED_TAG = 7  # separates the local-training RNG stream of (round, client)

#: ``run_iter(batch_idx, data_batch, step) -> outputs``: runs one step
#: (``step(data_batch)``) with whatever must happen around it (hooks).
IterRunner = Callable[[int, dict, Callable[[dict], dict]], dict]


def _plain_iter(idx: int, data_batch: dict, step: Callable) -> dict:
    return step(data_batch)


@CLIENT_TRAINERS.register_module()
class ClientTrainer:
    """Train one client locally (plain local objective, as in FedAvg).

    :meth:`fit` answers a :class:`~decssl_mm.federated.messages.ClientTask`
    with a :class:`~decssl_mm.federated.messages.ClientResult`: it loads,
    IN PLACE into the working model, the start weights (:meth:`start_weights`)
    and the client's local state (tensors that are not exchanged, and its
    optimizer state under ``optimizer_policy='keep'``); hands the task's
    model extras to the model; seeds torch/numpy/random from
    ``(seed, round, client)``; runs the client's batches, each step being
    :meth:`train_step`; and returns the trained model (:meth:`upload`), what
    persists on the client (:meth:`local_state`) and the extras asked for.
    The trainer does not know who drives it: what happens around a step
    (iteration hooks) comes in as ``run_iter`` at :meth:`setup`.

    Extras (see :func:`~decssl_mm.federated.messages.check_extras`): it
    uses ``'reference'`` (a state dict, given to a model's
    ``set_reference``), ``'alignment_targets'`` (``{'indices', 'feats'}``,
    given to ``set_alignment_targets``) and ``'feature_probe'``
    (``{'indices', 'pipeline', 'batch_size'}``: answered by ``'features'``,
    the trained backbone's eval-view features of those samples).

    Subclasses change one thing each: :meth:`start_weights` (e.g. FedEMA),
    :meth:`train_step` (e.g. FedProx's proximal term), :meth:`upload`,
    :meth:`local_state`, :meth:`result_extras`.

    Args:
        optimizer_policy (str): ``'reset'`` (fresh optimizer state for each
            client, as in FedAvg) or ``'keep'`` (a client's optimizer state
            persists between its rounds). Defaults to ``'reset'``.
    """

    #: Task extras this trainer understands.
    accepts_extras: Tuple[str, ...] = ('reference', 'alignment_targets',
                                       'feature_probe')
    #: Task extras this trainer cannot train without.
    needs_extras: Tuple[str, ...] = ()
    #: Result extras this trainer can produce.
    produces_extras: Tuple[str, ...] = ('features',)

    def __init__(self, optimizer_policy: str = 'reset') -> None:
        if optimizer_policy not in OPTIMIZER_POLICIES:
            raise ValueError(f'train_cfg.optimizer_policy must be one of '
                             f'{OPTIMIZER_POLICIES}, got '
                             f'{optimizer_policy!r}.')
        self.optimizer_policy = optimizer_policy
        self.wrapped_model: Optional[nn.Module] = None
        self.optim_wrapper = None
        self.dataset = None
        self.run_iter: IterRunner = _plain_iter
        self._pipeline: Tuple[Optional[str], Optional[Compose]] = (None, None)

    def setup(self, model: nn.Module, optim_wrapper, dataset=None,
              run_iter: Optional[IterRunner] = None) -> None:
        """Give the trainer what it trains with.

        Args:
            model (nn.Module): The working model (possibly wrapped; its
                ``train_step`` is called).
            optim_wrapper (OptimWrapper): The local optimizer.
            dataset: The training dataset (eval-view features).
            run_iter (callable, optional): Runs one step with what must
                happen around it. Defaults to the bare step.
        """
        self.wrapped_model = model
        self.optim_wrapper = optim_wrapper
        self.dataset = dataset
        self.run_iter = run_iter or _plain_iter

    @property
    def model(self) -> nn.Module:
        """The working model (unwrapped)."""
        return getattr(self.wrapped_model, 'module', self.wrapped_model)

    def begin_round(self, round_idx: int) -> None:
        """A round starts (nothing to prepare in the base trainer)."""

    def model_state(self) -> StateDict:
        """The working model's state-dict tensors (``state_dict()``)."""
        return self.model.state_dict()

    # --------------------------------------------------------------- a client
    def fit(self, task: ClientTask, batches: Iterable,
            local_state: Optional[dict]) -> ClientResult:
        """Train one client on ``batches`` as ``task`` asks.

        Args:
            task (ClientTask): The server's task.
            batches (Iterable): The client's batches of the round.
            local_state (dict, optional): What the client kept from its
                previous round (None before its first).

        Returns:
            ClientResult: The trained model, sample count, extras and the
            new local state.
        """
        self.load_client(task, local_state)
        steps = 0
        for data_batch in batches:
            self.run_iter(steps, data_batch, self.train_step)
            steps += 1
        with torch.no_grad():
            state = self.model_state()
            update, num_samples = self.upload(task, state)
            extras = self.result_extras(task, state)
            local = self.local_state(task, state)
        return ClientResult(task.client_id, task.round_idx, update,
                            num_samples, self.metrics(steps), extras, local)

    def metrics(self, steps: int) -> Dict[str, float]:
        """Scalars of the client's training (its number of steps)."""
        return {'steps': float(steps)}

    # ------------------------------------------------------------ start state
    def load_client(self, task: ClientTask,
                    local_state: Optional[dict]) -> None:
        """Load the start weights and the local state in place; seed."""
        start = self.start_weights(task, local_state)
        with torch.no_grad():
            sd = self.model_state()
            copy_state(sd, start)
            local = (local_state or {}).get('local', {})
            copy_state(sd, {k: t for k, t in local.items() if k in sd})
        self.restore_optimizer(local_state)
        self.apply_model_extras(task)
        self.seed_client(task)

    def start_weights(self, task: ClientTask,
                      local_state: Optional[dict]) -> StateDict:
        """The weights a client starts from: the task's start state.

        Args:
            task (ClientTask): The task.
            local_state (dict, optional): The client's local state (None
                before its first round).
        """
        return task.start_state

    def apply_model_extras(self, task: ClientTask) -> None:
        """Give the model what it aligns to (``'reference'``,
        ``'alignment_targets'``), where the model takes it."""
        model = self.model
        ref = task.extras.get('reference')
        if ref is not None and hasattr(model, 'set_reference'):
            model.set_reference(ref)
        targets = task.extras.get('alignment_targets')
        if targets is not None and hasattr(model, 'set_alignment_targets'):
            model.set_alignment_targets(targets['indices'], targets['feats'])

    def seed_client(self, task: ClientTask) -> None:
        """Seed torch, numpy and random from ``(seed, round, client)``."""
        ss = np.random.SeedSequence([int(task.seed), int(task.round_idx),
                                     int(task.client_id), _SEED_TAG])
        seed_all(int(ss.generate_state(1)[0]))

    def restore_optimizer(self, local_state: Optional[dict]) -> None:
        """Fresh optimizer state, or the client's own under ``'keep'``."""
        optimizer = self.optim_wrapper.optimizer
        optimizer.state.clear()
        if self.optimizer_policy == 'keep' and local_state is not None and \
                local_state.get('optimizer'):
            sd = optimizer.state_dict()
            sd['state'] = local_state['optimizer']
            optimizer.load_state_dict(sd)

    # ------------------------------------------------------------- one step
    def train_step(self, data_batch) -> Dict[str, torch.Tensor]:
        """One local optimisation step (the model's own ``train_step``)."""
        with client_local_ops(self.model):
            return self.wrapped_model.train_step(
                data_batch, optim_wrapper=self.optim_wrapper)

    # ------------------------------------------------------ what goes, stays
    def upload(self, task: ClientTask,
               state: StateDict) -> Tuple[StateDict, int]:
        """What the client sends the server: its model and sample count.

        The place for what a client does to its update before sending it
        (e.g. compression, privacy noise); the local state keeps the
        trained model either way.
        """
        return state, int(task.num_samples)

    def result_extras(self, task: ClientTask, state: StateDict) -> dict:
        """The result extras the task asks for (``'features'``)."""
        probe = task.extras.get('feature_probe')
        if probe is None:
            return {}
        indices = np.asarray(probe['indices'], np.int64)
        feats = eval_view_features(
            [self.model.backbone], self.model.data_preprocessor,
            self.dataset, self._eval_pipeline(probe['pipeline']), indices,
            int(probe['batch_size']))[0]
        return {'features': feats}

    def _eval_pipeline(self, cfg: list) -> Compose:
        key = repr(cfg)
        if self._pipeline[0] != key:
            self._pipeline = (key, Compose(copy.deepcopy(list(cfg))))
        return self._pipeline[1]

    def local_state(self, task: ClientTask, state: StateDict) -> dict:
        """What persists on the client until it is sampled again: the
        tensors that are not exchanged and the optimizer state under
        ``'keep'``."""
        exchanged = set(task.exchanged_keys)
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
        st = self.optim_wrapper.optimizer.state_dict()['state']
        return {
            int(i): {
                n: (v.detach().cpu().clone() if torch.is_tensor(v) else v)
                for n, v in s.items()
            }
            for i, s in st.items()
        }
