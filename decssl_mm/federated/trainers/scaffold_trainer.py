"""SCAFFOLD: local steps corrected by control variates."""
from typing import Dict, Optional

import torch

from decssl_mm.registry import CLIENT_TRAINERS
from decssl_mm.utils.state_dict import StateDict
from ..client_isolation import client_local_ops
from ..messages import ClientTask
from .client_trainer import ClientTrainer


@CLIENT_TRAINERS.register_module()
class ScaffoldTrainer(ClientTrainer):
    """SCAFFOLD (Karimireddy et al., ICML 2020) local training.

    The task brings the server's control variate ``c`` (task extra
    ``'server_control'``: one tensor per exchanged trainable parameter);
    the client keeps its own ``c_i`` in its local state (``'scaffold'``
    entry; zero before its first round). Every local step follows the
    corrected gradient ``g(y) - c_i + c``: the step adds the term
    ``loss_scaffold = sum <y, c - c_i>`` (constants, no gradient of their
    own) to the model's loss, so any optimiser wrapper (AMP included) sees
    the corrected gradient. After the ``K`` local steps (learning rates
    ``lr_1 .. lr_K``) the client's variate becomes (the paper's option II)

    ``c_i+ = c_i - c + (x - y) / sum_t lr_t``

    where ``x`` is the start model and ``y`` the trained one; the result
    carries ``'control_delta' = c_i+ - c_i`` for the server
    (:class:`~decssl_mm.federated.servers.ScaffoldServer`). With plain SGD
    this is the paper's algorithm; with momentum or weight decay the
    correction enters the optimiser like the gradient does.

    Args:
        **kwargs: Arguments of :class:`ClientTrainer`.
    """

    accepts_extras = ClientTrainer.accepts_extras + ('server_control',)
    needs_extras = ('server_control',)
    produces_extras = ClientTrainer.produces_extras + ('control_delta',)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._correction: StateDict = {}
        self._own: StateDict = {}
        self._new_own: StateDict = {}
        self._lr_sum = 0.0

    def load_client(self, task: ClientTask,
                    local_state: Optional[dict]) -> None:
        """Also the correction ``c - c_i`` of this client's steps."""
        super().load_client(task, local_state)
        server_c = task.extras['server_control']
        own = ((local_state or {}).get('scaffold') or {}).get('control')
        params = dict(self.model.named_parameters())
        self._own, self._correction = {}, {}
        for name, c in server_c.items():
            p = params[name]
            ci = own[name] if own and name in own else torch.zeros_like(c)
            self._own[name] = ci.to(p.device, torch.float32)
            self._correction[name] = (c.to(p.device, torch.float32) -
                                      self._own[name]).to(p.dtype)
        self._lr_sum = 0.0

    def correction_term(self) -> torch.Tensor:
        """``sum <y, c - c_i>`` over the corrected parameters."""
        total = None
        for name, p in self.model.named_parameters():
            corr = self._correction.get(name)
            if corr is None or not p.requires_grad:
                continue
            term = (p * corr).sum()
            total = term if total is None else total + term
        return total if total is not None else torch.zeros(())

    def train_step(self, data_batch) -> Dict[str, torch.Tensor]:
        """The model's loss plus ``loss_scaffold``, one optimiser update."""
        self._lr_sum += float(
            self.optim_wrapper.optimizer.param_groups[0]['lr'])
        model = self.model
        optim_wrapper = self.optim_wrapper
        with client_local_ops(model), optim_wrapper.optim_context(model):
            data = model.data_preprocessor(data_batch, True)
            losses = model._run_forward(data, mode='loss')
            losses['loss_scaffold'] = self.correction_term()
        parsed, log_vars = model.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        return log_vars

    def new_control(self, task: ClientTask, state: StateDict) -> StateDict:
        """``c_i+ = c_i - c + (x - y) / sum_t lr_t`` (``c_i`` unchanged for
        a parameter without gradient or a client without steps)."""
        server_c = task.extras['server_control']
        trainable = {n for n, p in self.model.named_parameters()
                     if p.requires_grad}
        out = {}
        for name, ci in self._own.items():
            if name not in trainable or self._lr_sum <= 0:
                out[name] = ci.clone()
                continue
            x = task.start_state[name].to(ci.device, torch.float32)
            y = state[name].to(ci.device, torch.float32)
            c = server_c[name].to(ci.device, torch.float32)
            out[name] = ci - c + (x - y) / self._lr_sum
        return out

    def result_extras(self, task: ClientTask, state: StateDict) -> dict:
        """Also ``'control_delta' = c_i+ - c_i``."""
        out = super().result_extras(task, state)
        self._new_own = self.new_control(task, state)
        out['control_delta'] = {
            k: (v - self._own[k]).cpu() for k, v in self._new_own.items()
        }
        return out

    def local_state(self, task: ClientTask, state: StateDict) -> dict:
        """Also the client's control variate ``c_i+``."""
        out = super().local_state(task, state)
        out['scaffold'] = {
            'control': {k: v.detach().cpu().clone()
                        for k, v in self._new_own.items()}
        }
        return out
