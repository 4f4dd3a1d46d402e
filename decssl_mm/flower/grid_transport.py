"""Tasks out and results back through Flower's grid."""
import logging
from typing import Iterable, List, Optional, Set, Tuple

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.common.constant import (HEARTBEAT_DEFAULT_INTERVAL,
                                  HEARTBEAT_PATIENCE, ErrorCode)
from mmengine.logging import print_log

from decssl_mm.federated.messages import ClientTask
from .codec import (decode_result, decode_scores, encode_score_query,
                    encode_task)
from .enrolment import Roster

#: Message type of the enrolment (site id, images, config check).
ENROL = 'query'
#: Message type of a round's task.
FIT = 'train'
#: Message type of FeatARC's score query (the first message of a round).
SCORE = 'query.score'


#: Seconds after its last heartbeat that the SuperLink holds a SuperNode
#: offline (Flower 1.42: patience 2 x the fixed 30 s interval).
NODE_GONE_AFTER = HEARTBEAT_PATIENCE * HEARTBEAT_DEFAULT_INTERVAL
#: Why a site whose node the SuperLink holds offline gives no result.
NODE_GONE = ('its node is offline (the SuperNode stopped, or no heartbeat '
             f'reached the SuperLink for {NODE_GONE_AFTER:.0f} s: killed or '
             'cut off)')


def _error_text(reply: Message) -> str:
    if reply.error.code == ErrorCode.NODE_UNAVAILABLE:
        return NODE_GONE
    reason = (reply.error.reason or '').strip()
    last = reason.splitlines()[-1] if reason else f'code {reply.error.code}'
    return f'the site failed: {last}'


def _reply_nodes(msgs: List[Message], replies: Iterable[Message]
                 ) -> List[Tuple[int, Message]]:
    """Each reply with the node its task went to. The SuperLink answers for
    a node it holds offline itself (source: the SuperLink, not the node),
    so a reply is matched to its task, by the message id the grid set on
    the task when it pushed it."""
    node_of = {m.metadata.message_id: int(m.metadata.dst_node_id)
               for m in msgs if m.metadata.message_id}
    return [(node_of.get(r.metadata.reply_to_message_id,
                         int(r.metadata.src_node_id)), r) for r in replies]


class GridTransport:
    """Send tasks to nodes and collect their results over a Flower grid.

    Args:
        grid (Grid): The ServerApp's grid.
        enrol_timeout (float): Seconds to wait for the sites' enrolment.
    """

    def __init__(self, grid, enrol_timeout: float = 600.0) -> None:
        self.grid = grid
        self.enrol_timeout = float(enrol_timeout)

    def enrol(self, fingerprint: str) -> Roster:
        """Ask every connected node for its site id and image count; a
        site whose config differs answers with an error naming it.

        Raises:
            RuntimeError: A site refused, naming its node and the reason.
        """
        nodes = sorted(int(n) for n in self.grid.get_node_ids())
        ask = RecordDict({'enrol': ConfigRecord(
            {'config-fingerprint': fingerprint})})
        msgs = [Message(RecordDict(dict(ask)), n, ENROL, group_id='enrol')
                for n in nodes]
        roster, problems, answered = {}, [], set()
        replies = self.grid.send_and_receive(msgs, timeout=self.enrol_timeout)
        for node, reply in _reply_nodes(msgs, replies):
            answered.add(node)
            if reply.has_error():
                problems.append(f'node {node}: {_error_text(reply)}')
                continue
            site = reply.content.config_records['site']
            sid = site.get('site-id')
            roster[node] = (None if sid is None or sid < 0 else int(sid),
                            int(site['num-samples']))
        missing = sorted(set(nodes) - answered)
        problems += [f'node {n}: no answer within {self.enrol_timeout:.0f} s'
                     for n in missing]
        if problems:
            raise RuntimeError('Enrolment failed: ' + '; '.join(problems))
        return roster

    def online_nodes(self) -> Set[int]:
        """The nodes the SuperLink holds online now (a SuperNode whose
        heartbeats stopped drops out of it, see :data:`NODE_GONE`)."""
        return {int(n) for n in self.grid.get_node_ids()}

    def fit(self, round_idx: int, sends: Iterable[Tuple[int, ClientTask]],
            fingerprint: str, timeout: Optional[float]) -> List:
        """Send a round's tasks; the replies as ``(node, result | error)``
        (nodes that did not answer in time are absent; a node that went
        offline during the round answers :data:`NODE_GONE` once the
        SuperLink noticed, before the timeout)."""
        msgs = [Message(encode_task(task, fingerprint), int(node), FIT,
                        group_id=str(round_idx)) for node, task in sends]
        return self._collect(msgs, timeout, decode_result)

    def _collect(self, msgs: List[Message], timeout: Optional[float],
                 decode) -> List:
        """Send ``msgs``; each reply decoded, or the reason it is none."""
        out = []
        replies = self.grid.send_and_receive(msgs, timeout=timeout)
        for node, reply in _reply_nodes(msgs, replies):
            if reply.has_error():
                out.append((node, _error_text(reply)))
                continue
            try:
                out.append((node, decode(reply.content)))
            except (KeyError, TypeError, ValueError) as e:
                print_log(f'node {node}: unreadable reply ({e})',
                          logger='current', level=logging.WARNING)
                out.append((node, f'unreadable reply: {e}'))
        return out

    def score(self, round_idx: int, sends: Iterable[Tuple[int, int]],
              clusters: dict, seed: int, fingerprint: str,
              timeout: Optional[float]) -> List:
        """Send FeatARC's score queries ``(node, site)``; the replies as
        ``(node, (site, round, scores, stale) | error)``."""
        msgs = [Message(encode_score_query(site, round_idx, seed, clusters,
                                           fingerprint), int(node), SCORE,
                        group_id=f'{round_idx}.score')
                for node, site in sends]
        return self._collect(msgs, timeout, decode_scores)
