"""The FedAvg-style server: one global model, one aggregator."""
from typing import Dict, List, Optional, Sequence

import torch

from decssl_mm.registry import AGGREGATORS, SERVERS
from decssl_mm.utils.registry_utils import build_checked
from ..aggregators import BaseAggregator

StateDict = Dict[str, torch.Tensor]


@SERVERS.register_module()
class FedAvgServer:
    """Hold the global model; every client starts from it; aggregate.

    The interface every server implements (the loop calls nothing else):
    :meth:`setup`, :meth:`begin_round`, :meth:`start_state`,
    :meth:`on_client_start`, :meth:`add`, :meth:`client_extras`,
    :meth:`finish_round`, :meth:`state_dict`, :meth:`load_state_dict`, and
    the attributes ``global_state`` (the exported model: checkpoint,
    validation, kNN), ``exchanged_keys`` and ``exchanged_bytes``.

    Args:
        aggregator (dict, optional): Aggregator config (``train_cfg.
            aggregator``). Defaults to ``dict(type='FedAvg')``.
    """

    def __init__(self, aggregator: Optional[dict] = None) -> None:
        self.aggregator_cfg = aggregator
        self.aggregator: BaseAggregator = self.build_aggregator()
        self.loop = None
        self.global_state: StateDict = {}
        self.exchanged_keys: List[str] = []
        self.exchanged_bytes = 0

    def build_aggregator(self) -> BaseAggregator:
        """A new aggregator from the config (one per global model)."""
        return build_checked(AGGREGATORS, self.aggregator_cfg,
                             'train_cfg.aggregator', 'FedAvg')

    # ----------------------------------------------------------------- setup
    def setup(self, loop) -> None:
        """Take the working model's weights as the initial global model.

        Args:
            loop (FederatedTrainLoop): The loop (model, work dir, clients).
        """
        self.loop = loop
        model = loop.model
        sd = model.state_dict()
        self.global_state = {k: v.detach().clone() for k, v in sd.items()}
        self.param_keys = [n for n, _ in model.named_parameters()]
        self.exchanged_keys = self.aggregator.select_keys(
            list(sd), param_keys=self.param_keys)
        self.exchanged_bytes = sum(sd[k].numel() * sd[k].element_size()
                                   for k in self.exchanged_keys)
        self.setup_aggregator(self.aggregator)

    def setup_aggregator(self, aggregator: BaseAggregator) -> None:
        """Run-level set-up and round-size check of an aggregator."""
        aggregator.setup(self.loop.runner.work_dir)
        aggregator.check_clients_per_round(self.loop.clients_per_round)

    # ------------------------------------------------------------- the round
    def begin_round(self, round_idx: int, mine: Sequence[int]) -> None:
        """Start a round (``mine``: the clients this rank trains)."""
        self.aggregator.begin_round(self.global_state)

    def start_state(self, client_id: int) -> StateDict:
        """The model a client starts its local training from."""
        return self.global_state

    def on_client_start(self, client_id: int, model: torch.nn.Module) -> None:
        """Called once the client's start weights are in ``model``."""

    def add(self, client_id: int, state: StateDict, num_samples: int) -> None:
        """Feed a trained client model to the aggregation."""
        self.aggregator.add(client_id, state, num_samples)

    def client_extras(self, client_id: int,
                      model: torch.nn.Module) -> dict:
        """What the server needs kept in a client's local state."""
        return {}

    def finish_round(self, round_idx: int) -> Dict[str, float]:
        """Aggregate the round into the global model.

        Returns:
            dict: Extra scalars to log; ``'comm/extra_bytes'`` is added to
            the communication total.
        """
        copy_into(self.global_state, self.aggregator.finalize())
        return {}

    def describe(self) -> str:
        """One line for the start-of-training log."""
        return f'server {type(self).__name__}'

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Server state of the checkpoint (plain tensors and numbers)."""
        return {'aggregator': self.aggregator.state_dict(), 'extra': {}}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (on resume)."""
        self.aggregator.load_state_dict(state.get('aggregator', {}))


def copy_into(dst: StateDict, new: Optional[StateDict]) -> None:
    """Copy an aggregate's tensors into a model state, in place."""
    if new is None:
        return
    with torch.no_grad():
        for k, v in new.items():
            dst[k].copy_(v)

