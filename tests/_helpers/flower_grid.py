"""A Flower grid in one process: messages go straight to the ClientApp."""
import traceback
from typing import Dict, Iterable, List, Optional

from flwr.app import Context, Error, Message, RecordDict


class LocalGrid:
    """Deliver each message to ``client_app`` with the node's context.

    Args:
        client_app (ClientApp): The ClientApp every node runs.
        node_configs (dict): ``node id -> node config``.
        run_config (dict): The run config.
        drop (set, optional): Nodes that never answer.
    """

    def __init__(self, client_app, node_configs: Dict[int, dict],
                 run_config: dict, drop: Optional[set] = None) -> None:
        self.app = client_app
        self.node_configs = node_configs
        self.run_config = run_config
        self.drop = set(drop or ())
        # what the runtime sets in a ServerApp process (messages read it)
        from flwr.supercore.task_identity import TaskIdentity
        TaskIdentity.run_id, TaskIdentity.node_id = 1, 0
        TaskIdentity.task_id = 1

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_configs)

    def _context(self, node: int) -> Context:
        return Context(run_id=1, node_id=node,
                       node_config=dict(self.node_configs[node]),
                       state=RecordDict(), run_config=dict(self.run_config))

    def send_and_receive(self, messages: Iterable[Message], *,
                         timeout: Optional[float] = None) -> List[Message]:
        replies = []
        for msg in messages:
            node = msg.metadata.dst_node_id
            if node in self.drop:
                continue
            try:
                replies.append(self.app(msg, self._context(node)))
            except Exception as e:  # noqa: B902 - as the runtime does
                replies.append(Message(
                    Error(0, ''.join(traceback.format_exception(e))),
                    reply_to=msg))
        return replies


def local_sites(cfg, tmp_path) -> tuple:
    """Dump ``cfg`` as the shared config and give site ``k`` client ``k``'s
    images; returns ``(config path, node id -> node config)`` with node
    ids ``100 + k``."""
    from decssl_mm.flower.site_split import split_fmnist_sites
    path = str(tmp_path / 'shared_cfg.py')
    cfg.dump(path)
    sites = split_fmnist_sites(cfg, str(tmp_path / 'sites'))
    nodes = {100 + k: {'data-root': d, 'site-id': k,
                       'state-dir': str(tmp_path / f'state{k}')}
             for k, d in enumerate(sites)}
    return path, nodes
