"""FedProx: the local objective plus a proximal term to the global model."""
from typing import Dict, Optional

import torch

from decssl_mm.registry import CLIENT_TRAINERS
from decssl_mm.utils.state_dict import StateDict
from ..client_isolation import client_local_ops
from ..messages import ClientTask
from .client_trainer import ClientTrainer


@CLIENT_TRAINERS.register_module()
class FedProxTrainer(ClientTrainer):
    """FedProx (Li et al., MLSys 2020) local training.

    Each local step minimises the model's own loss plus
    ``loss_prox = (mu / 2) * ||w - w_start||^2`` over the exchanged
    trainable parameters, where ``w_start`` is the model the client started
    the round from (the global model, or its cluster's model under a
    clustered server). Parameters that stay on the client (e.g. BatchNorm
    under FedBN) and buffers are not pulled. ``loss_prox`` is logged like
    the other losses. With ``mu=0`` the step is the model's own
    ``train_step``: training equals :class:`ClientTrainer` exactly.

    Args:
        mu (float): Proximal weight, ``>= 0``. Defaults to 0.01.
        **kwargs: Arguments of :class:`ClientTrainer`.
    """

    def __init__(self, mu: float = 0.01, **kwargs) -> None:
        if not mu >= 0:
            raise ValueError(
                f'train_cfg.trainer.mu must be >= 0 (FedProx), got {mu}.')
        super().__init__(**kwargs)
        self.mu = float(mu)
        self._anchor: Dict[str, torch.Tensor] = {}

    def start_weights(self, task: ClientTask,
                      local_state: Optional[dict]) -> StateDict:
        """The server's model; remembered as the proximal anchor."""
        start = super().start_weights(task, local_state)
        exchanged = set(task.exchanged_keys)
        self._anchor = {
            name: start[name]
            for name, _ in self.model.named_parameters()
            if name in exchanged
        }
        return start

    def proximal_term(self, model: torch.nn.Module) -> torch.Tensor:
        """``(mu / 2) * sum ||w - w_start||^2`` (differentiable)."""
        total = None
        for name, p in model.named_parameters():
            anchor = self._anchor.get(name)
            if anchor is None or not p.requires_grad:
                continue
            sq = (p - anchor.to(p.device, p.dtype)).pow(2).sum()
            total = sq if total is None else total + sq
        if total is None:
            return torch.zeros(())
        return 0.5 * self.mu * total

    def train_step(self, data_batch) -> Dict[str, torch.Tensor]:
        """The model's loss plus ``loss_prox``, one optimiser update."""
        if self.mu == 0:
            return super().train_step(data_batch)
        model = self.model
        optim_wrapper = self.optim_wrapper
        with client_local_ops(model), optim_wrapper.optim_context(model):
            data = model.data_preprocessor(data_batch, True)
            losses = model._run_forward(data, mode='loss')
            losses['loss_prox'] = self.proximal_term(model)
        parsed, log_vars = model.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        return log_vars
