"""FedEMA: divergence-aware mixing of a client's own and the global model."""
import math
import re
from typing import Dict, List, Optional, Sequence

from decssl_mm.registry import CLIENT_TRAINERS
from decssl_mm.utils.state_dict import StateDict
from ..messages import ClientTask
from .client_trainer import ClientTrainer


@CLIENT_TRAINERS.register_module()
class FedEMATrainer(ClientTrainer):
    """FedEMA (Zhuang et al., ICLR 2022) local training.

    Each client keeps its own trained model between its rounds (in its
    client state, key ``'fedema'``). When it is sampled again, it starts
    from

    ``w_start = mu * w_local + (1 - mu) * w_global``,
    ``mu = min(lambda * ||w_global - w_local||, 1)``

    for every exchanged floating tensor (the online encoder, and the
    predictor where the algorithm has one), where the divergence
    ``||.||`` is the L2 norm over the exchanged *parameters* whose names
    match ``divergence_keys`` (the online encoder by default). ``lambda``
    is set per client the first time a divergence can be measured, i.e. at
    its second participation: ``lambda = tau / ||w_global - w_local||``, so
    that ``mu`` then equals ``min(tau, 1)`` and later follows the
    divergence. At its first participation a client starts from the global
    model, as in FedAvg. Non-exchanged tensors come from the client state
    as usual.

    Args:
        tau (float): Autoscaler target, ``> 0``. Defaults to 0.7.
        divergence_keys (Sequence[str]): Regular expressions (``re.search``)
            of the parameters the divergence is measured on. Defaults to
            the backbone and neck (online encoder).
        **kwargs: Arguments of :class:`ClientTrainer`.
    """

    def __init__(self,
                 tau: float = 0.7,
                 divergence_keys: Sequence[str] = (r'^backbone\.',
                                                   r'^neck\.'),
                 **kwargs) -> None:
        if not (isinstance(tau, (int, float)) and tau > 0
                and math.isfinite(tau)):
            raise ValueError(
                f'train_cfg.trainer.tau must be > 0 (FedEMA), got {tau}.')
        super().__init__(**kwargs)
        self.tau = float(tau)
        self.divergence_keys = list(divergence_keys)
        self._lambda: Optional[float] = None
        #: ``mu`` of the client being trained (None: first participation)
        self.last_mu: Optional[float] = None

    @staticmethod
    def ema_keys(task: ClientTask, start: StateDict) -> List[str]:
        """Exchanged floating tensors (mixed)."""
        return [k for k in task.exchanged_keys
                if start[k].is_floating_point()]

    def divergence_names(self, task: ClientTask) -> List[str]:
        """Exchanged parameters whose names match ``divergence_keys``."""
        exchanged = set(task.exchanged_keys)
        names = [n for n, _ in self.model.named_parameters()
                 if n in exchanged and any(
                     re.search(p, n) for p in self.divergence_keys)]
        if not names:
            raise ValueError('train_cfg.trainer.divergence_keys '
                             f'{self.divergence_keys} match no exchanged '
                             'parameter of the model.')
        return names

    def start_weights(self, task: ClientTask,
                      local_state: Optional[dict]) -> StateDict:
        """The EMA of the client's own and the server's model."""
        start = super().start_weights(task, local_state)
        own = (local_state or {}).get('fedema') or {}
        self._lambda = own.get('lambda')
        self.last_mu = None
        local = own.get('model')
        if not local:
            return start
        mu, self._lambda = fedema_mu(start, local,
                                     self.divergence_names(task),
                                     self.tau, self._lambda)
        self.last_mu = mu
        mixed = dict(start)
        for k in self.ema_keys(task, start):
            g = start[k]
            mixed[k] = mu * local[k].to(g.device, g.dtype) + (1 - mu) * g
        return mixed

    def metrics(self, steps: int) -> Dict[str, float]:
        """Also ``fedema_mu`` (absent at a first participation)."""
        out = super().metrics(steps)
        if self.last_mu is not None:
            out['fedema_mu'] = float(self.last_mu)
        return out

    def local_state(self, task: ClientTask, state: StateDict) -> dict:
        """Also the client's trained exchanged tensors and its ``lambda``.
        """
        out = super().local_state(task, state)
        out['fedema'] = {
            'model': {
                k: state[k].detach().cpu().clone()
                for k in self.ema_keys(task, state)
            },
            'lambda': self._lambda,
        }
        return out


def fedema_mu(global_state: StateDict, local_state: StateDict,
              names: Sequence[str], tau: float,
              lam: Optional[float]) -> tuple:
    """FedEMA's ``mu`` and the client's (possibly new) ``lambda``.

    Args:
        global_state (dict): The server's model.
        local_state (dict): The client's own previous model.
        names (Sequence[str]): Keys the divergence is measured over.
        tau (float): Autoscaler target.
        lam (float, optional): The client's ``lambda``; None to set it now.

    Returns:
        tuple: ``(mu, lambda)``; ``lambda`` stays None while the divergence
        is 0 (then ``mu`` is 0: both models are equal anyway).
    """
    sq = 0.0
    for k in names:
        diff = global_state[k].double() - local_state[k].double().to(
            global_state[k].device)
        sq += float(diff.pow(2).sum())
    div = math.sqrt(sq)
    if lam is None:
        if div == 0:
            return 0.0, None
        lam = tau / div
    return min(lam * div, 1.0), float(lam)
