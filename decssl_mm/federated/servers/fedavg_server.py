"""The FedAvg-style server: one global model, one aggregator."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from decssl_mm.registry import AGGREGATORS, SERVERS
from decssl_mm.utils.registry_utils import build_checked
from decssl_mm.utils.state_dict import StateDict, clone_state, copy_state
from ..aggregators import BaseAggregator
from ..messages import ClientResult, ClientTask, RunContext


@SERVERS.register_module()
class FedAvgServer:
    """Hold the global model; every client starts from it; aggregate.

    The interface every server implements (the loop calls nothing else):
    :meth:`setup`, :meth:`begin_round`, :meth:`configure` (a sampled client
    -> :class:`~decssl_mm.federated.messages.ClientTask`), :meth:`add`
    (a :class:`~decssl_mm.federated.messages.ClientResult` -> the
    aggregate), :meth:`finish_round`, :meth:`state_dict`,
    :meth:`load_state_dict`, :meth:`describe`, and the attributes
    ``global_state`` (the exported model: checkpoint, validation, kNN),
    ``exchanged_keys``, ``exchanged_bytes``, the extras it sends and needs
    (``sends_extras``, ``needs_extras``) and ``memo_key``: the entry of a
    client's local state the server keeps there (None: nothing), handed
    back to :meth:`begin_round` when the client is sampled again.

    Args:
        aggregator (dict, optional): Aggregator config (``train_cfg.
            aggregator``). Defaults to ``dict(type='FedAvg')``.
    """

    #: Task extras this server sends.
    sends_extras: Tuple[str, ...] = ()
    #: Result extras this server needs.
    needs_extras: Tuple[str, ...] = ()
    #: Entry of a client's local state this server keeps there.
    memo_key: Optional[str] = None

    def __init__(self, aggregator: Optional[dict] = None) -> None:
        self.aggregator_cfg = aggregator
        self.aggregator: BaseAggregator = self.build_aggregator()
        self.ctx: Optional[RunContext] = None
        self.global_state: StateDict = {}
        self.param_keys: List[str] = []
        self.exchanged_keys: List[str] = []
        self.exchanged_bytes = 0

    def build_aggregator(self) -> BaseAggregator:
        """A new aggregator from the config (one per global model)."""
        return build_checked(AGGREGATORS, self.aggregator_cfg,
                             'train_cfg.aggregator', 'FedAvg')

    # ----------------------------------------------------------------- setup
    def setup(self, ctx: RunContext) -> None:
        """Take the working model's weights as the initial global model.

        Args:
            ctx (RunContext): The model, data and sizes of the run.
        """
        self.ctx = ctx
        sd = ctx.model.state_dict()
        self.global_state = clone_state(sd)
        self.param_keys = [n for n, _ in ctx.model.named_parameters()]
        self.exchanged_keys = self.aggregator.select_keys(
            list(sd), param_keys=self.param_keys)
        self.exchanged_bytes = sum(sd[k].numel() * sd[k].element_size()
                                   for k in self.exchanged_keys)
        self.setup_aggregator(self.aggregator)

    def setup_aggregator(self, aggregator: BaseAggregator) -> None:
        """Run-level set-up and round-size check of an aggregator."""
        aggregator.setup(self.ctx.work_dir)
        aggregator.check_clients_per_round(self.ctx.clients_per_round)

    # ------------------------------------------------------------- the round
    def begin_round(self, round_idx: int, mine: Sequence[int],
                    memos: Optional[Dict[int, Any]] = None) -> None:
        """Start a round.

        Args:
            round_idx (int): The round.
            mine (Sequence[int]): The clients this rank trains.
            memos (dict, optional): ``client -> its memo_key entry`` (None
                where it has none) for a server with a ``memo_key``.
        """
        self.aggregator.begin_round(self.global_state)

    def start_state(self, client_id: int) -> StateDict:
        """The model a client starts its local training from."""
        return self.global_state

    def configure(self, client_id: int, round_idx: int,
                  num_samples: int) -> ClientTask:
        """The task of a sampled client: start from the global model."""
        return ClientTask(client_id=int(client_id), round_idx=int(round_idx),
                          start_state=self.start_state(client_id),
                          exchanged_keys=tuple(self.exchanged_keys),
                          num_samples=int(num_samples),
                          seed=int(self.ctx.seed),
                          extras=self.task_extras(client_id))

    def task_extras(self, client_id: int) -> Dict[str, Any]:
        """The extras of a client's task (none here)."""
        return {}

    def add(self, result: ClientResult) -> Dict[str, Any]:
        """Fold a client's result into the aggregate.

        Returns:
            dict: Entries to keep in the client's local state (under
            ``memo_key``; empty here).
        """
        self.aggregator.add(result.client_id, result.update,
                            result.num_samples)
        return {}

    def finish_round(self, round_idx: int) -> Dict[str, float]:
        """Aggregate the round into the global model.

        Returns:
            dict: Extra scalars to log; ``'comm/extra_bytes'`` is added to
            the communication total.
        """
        copy_state(self.global_state, self.aggregator.finalize())
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
