"""SCAFFOLD's server: the global model and the server control variate."""
from typing import Any, Dict, Optional, Sequence

import torch

from decssl_mm.registry import SERVERS
from ..dist_utils import all_reduce_tensors
from ..messages import ClientResult, RunContext
from .fedavg_server import FedAvgServer


@SERVERS.register_module()
class ScaffoldServer(FedAvgServer):
    """SCAFFOLD (Karimireddy et al., ICML 2020): FedAvg plus ``c``.

    The server keeps a control variate ``c`` (float32, zero at the start)
    for every exchanged trainable parameter and sends it with each task
    (extra ``'server_control'``). The global model is aggregated by the
    configured aggregator (``FedAvg``: the sample-weighted mean of the
    client models, i.e. a global step size of 1; ``FedAvgM``/``FedAdam``
    for a server step of their own); the clients' ``'control_delta'``
    extras update

    ``c <- c + (1 / N) * sum_{i in S} delta_c_i``

    with ``N`` the number of clients of the partition and ``S`` the
    round's clients whose update was aggregated (summed over ranks). ``c``
    is part of the checkpoint (``['federated']['extra']['control']``).

    Args:
        aggregator (dict, optional): Aggregator config. Defaults to
            ``dict(type='FedAvg')``.
    """

    sends_extras = ('server_control',)
    needs_extras = ('control_delta',)

    def __init__(self, aggregator: Optional[dict] = None) -> None:
        super().__init__(aggregator=aggregator)
        self.control: Dict[str, torch.Tensor] = {}
        self._delta_sum: Dict[str, torch.Tensor] = {}

    def setup(self, ctx: RunContext) -> None:
        """Also ``c = 0`` over the exchanged trainable parameters."""
        super().setup(ctx)
        exchanged = set(self.exchanged_keys)
        self.control = {
            n: torch.zeros_like(p, dtype=torch.float32)
            for n, p in ctx.model.named_parameters()
            if n in exchanged and p.requires_grad
        }

    def begin_round(self, round_idx: int, mine: Sequence[int],
                    memos: Optional[Dict[int, Any]] = None) -> None:
        """Also an empty sum of the round's control deltas."""
        super().begin_round(round_idx, mine, memos)
        self._delta_sum = {k: torch.zeros_like(v, dtype=torch.float64)
                           for k, v in self.control.items()}

    def task_extras(self, client_id: int) -> Dict[str, Any]:
        """The server control variate ``c``."""
        return {'server_control': self.control}

    def add(self, result: ClientResult) -> Dict[str, Any]:
        """Fold the model update and the client's control delta."""
        memo = super().add(result)  # raises if the update is refused
        delta = result.extras['control_delta']
        for k, acc in self._delta_sum.items():
            acc.add_(delta[k].to(acc.device, torch.float64))
        return memo

    def finish_round(self, round_idx: int) -> Dict[str, float]:
        """Aggregate the models; ``c += sum(delta_c) / N``."""
        sums = all_reduce_tensors(self._delta_sum)
        n = float(self.ctx.num_clients)
        with torch.no_grad():
            for k, c in self.control.items():
                c.add_((sums[k] / n).to(c.dtype))
        self._delta_sum = {}
        return super().finish_round(round_idx)

    def describe(self) -> str:
        return (f'server {type(self).__name__}: control variates over '
                f'{len(self.control)} parameters')

    def state_dict(self) -> dict:
        """Also the control variate."""
        state = super().state_dict()
        state['extra'] = {
            'control': {k: v.detach().cpu().clone()
                        for k, v in self.control.items()}
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (on resume)."""
        super().load_state_dict(state)
        saved = (state.get('extra') or {}).get('control') or {}
        with torch.no_grad():
            for k, v in saved.items():
                if k in self.control:
                    self.control[k].copy_(v)
