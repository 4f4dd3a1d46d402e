"""The server's rounds across sites: the in-process round, sent out."""
import logging
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop

from decssl_mm.federated.aggregators import ClientUpdateRejected
from decssl_mm.federated.federated_hook import FederatedStateHook
from decssl_mm.federated.loop_parts import build_parts
from decssl_mm.federated.messages import ClientResult, ClientTask, RunContext
from decssl_mm.federated.run_log import log_round_scalars
from decssl_mm.utils.state_dict import copy_state
from .enrolment import assign_sites

#: A site's answer: its result, or the reason it gave none.
Reply = Tuple[int, Union[ClientResult, str]]
#: Why a site whose node is offline at the start of a round gets no task.
NODE_OFFLINE = ('its node is not connected to the SuperLink (stopped, or '
                'its heartbeats stopped)')


class _NoImages:
    """The server's stand-in for a train dataloader: it holds no images
    (mmengine reads its length, one round, to build the schedulers)."""

    dataset = None

    def __len__(self) -> int:
        return 1


class FederationLoop(BaseLoop):
    """Run the config's rounds with every client a remote site.

    The server, aggregator and client sampler are the registered parts of
    ``train_cfg`` (built as the in-process loop builds them); the
    ``transport`` carries tasks and results (Flower's grid in a
    deployment, see :class:`~decssl_mm.flower.grid_transport.
    GridTransport`). Round ``r``: sample participants among the enrolled
    sites, leave out the participants whose node the transport holds
    offline (``transport.online_nodes()``, if it has one),
    ``server.begin_round`` (a server that assigns participants by their
    own data, FeatARC's, asks the sites for their scores first:
    :meth:`score_at_sites`), ``server.configure`` per participant, send
    the tasks and wait (``round_timeout``), fold the results with
    ``server.add`` in participant order (a refused result is logged with
    its node and left out), ``server.finish_round``, the global model into
    the runner's model, the ``after_train_epoch`` hooks (checkpoint). The
    checkpoint has the in-process ``federated`` entry, so resume and
    ``extract_backbone.py`` work unchanged.

    Args:
        runner (Runner): The server's runner (no training data).
        transport: ``enrol(fingerprint) -> roster``,
            ``fit(round_idx, [(node, task)], fingerprint, timeout) ->
            [(node, result | error)]`` and optionally
            ``online_nodes() -> set of node ids``.
        train_cfg (dict): The config's ``train_cfg``.
        fingerprint (str): The config's fingerprint (sent in each task).
        round_timeout (float, optional): Seconds to wait for a round's
            results. None: no limit.
        min_results (int): Fewest admitted results a round needs; a
            participant left out (offline, failed, refused, no reply in
            time) counts against it.
    """

    is_federated = True

    def __init__(self, runner, transport, train_cfg: dict, fingerprint: str,
                 round_timeout: Optional[float] = None,
                 min_results: int = 1) -> None:
        self._runner = runner
        self.dataloader = _NoImages()
        cfg = dict(train_cfg)
        cfg.pop('type', None)
        self.train_cfg = cfg
        self.transport = transport
        self.fingerprint = fingerprint
        self.round_timeout = round_timeout
        self.min_results = int(min_results)
        self._max_epochs = int(cfg['rounds'])
        self._epoch = 0
        self.seed = int(runner.seed if cfg.get('seed') is None
                        else cfg['seed'])
        self.comm_total = 0
        self._rounds_done = 0
        self._pending: Optional[dict] = None
        self.node_of: Dict[int, int] = {}
        (self.client_sampler, _, self.server, _) = build_parts(
            runner.work_dir, self.seed, cfg.get('sampler'),
            cfg.get('participation'), cfg.get('clients_per_round'),
            cfg.get('trainer'), cfg.get('server'), cfg.get('aggregator'),
            cfg.get('client_state'), cfg.get('optimizer_policy', 'reset'))
        if self.server.memo_key is not None:
            if not hasattr(self.server, 'serve_sites'):
                raise ValueError(
                    f'train_cfg.server: {type(self.server).__name__} keeps '
                    'a memo per client and has no round across sites '
                    '(serve_sites); it does not run over Flower.')
            self.server.serve_sites()
        if not any(isinstance(h, FederatedStateHook) for h in runner.hooks):
            runner.register_hook(FederatedStateHook(), priority='VERY_HIGH')

    @property
    def max_epochs(self) -> int:
        """Number of rounds."""
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        """Rounds (the server runs no local iterations)."""
        return self._max_epochs

    @property
    def epoch(self) -> int:
        """Rounds completed."""
        return self._epoch

    @property
    def iter(self) -> int:
        """Rounds completed."""
        return self._epoch

    @property
    def model(self) -> torch.nn.Module:
        """The runner's model (unwrapped): the global model."""
        m = self.runner.model
        return getattr(m, 'module', m)

    @property
    def global_state(self):
        """The server's global model."""
        return self.server.global_state

    # ------------------------------------------------------------------ run
    def run(self) -> torch.nn.Module:
        """Enrol the sites, then run all (remaining) rounds."""
        self.runner.call_hook('before_train')
        roster = self.transport.enrol(self.fingerprint)
        self.node_of, sizes = assign_sites(roster)
        print_log(f'Sites (site -> node, images): '
                  f'{[(s, n, int(sizes[s])) for s, n in self.node_of.items()]}',
                  logger='current')
        self.server.setup(RunContext(
            self.model, None, sizes,
            self.client_sampler.num_sampled(len(sizes)), self.seed,
            self.runner.work_dir))
        self.client_sizes = sizes
        if self._pending is not None and self._epoch > 0:
            self._resume(self._pending)
        self._pending = None
        while self._epoch < self._max_epochs:
            self.run_epoch()
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> None:
        """One round across the sites."""
        self.runner.call_hook('before_train_epoch')
        r = self._epoch
        participants = [int(k) for k in self.client_sampler.sample(
            r, self.client_sizes)]
        left_out = self.offline_sites(r, participants)
        if getattr(self.server, 'at_sites', False):
            left_out.update(self.score_at_sites(r, participants, left_out))
        else:
            self.server.begin_round(r, participants, None)
        sends = [(self.node_of[k],
                  self.server.configure(k, r, int(self.client_sizes[k])))
                 for k in participants if k not in left_out]
        replies = self.transport.fit(r, sends, self.fingerprint,
                                     self.round_timeout) if sends else []
        admitted = self.fold(r, participants, replies, left_out)
        extra = self.server.finish_round(r)
        copy_state(self.model.state_dict(), self.global_state)
        self.comm_total += (2 * self.server.exchanged_bytes * admitted +
                            int(extra.get('comm/extra_bytes', 0)))
        scalars = {'round/clients': float(admitted),
                   'comm/bytes_total': float(self.comm_total)}
        scalars.update({k: v for k, v in extra.items()
                        if k != 'comm/extra_bytes'})
        log_round_scalars(self.runner, r, scalars)
        print_log(f'{self._round_name(r)}: {admitted} of '
                  f'{len(participants)} sites admitted.', logger='current')
        self._rounds_done = r + 1
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def score_at_sites(self, round_idx: int, participants: List[int],
                       left_out: Dict[int, str]) -> Dict[int, str]:
        """FeatARC's first message of a round: every participant that has
        trained before gets the cluster backbones and scores them on its
        images; the server assigns the participants by the scores
        (``server.begin_round_at_sites``). A site that gives no scores is
        left out of the round, logged; returns those sites with the reason.

        Raises:
            RuntimeError: Too few participants left for ``min_results``.
        """
        present = [k for k in participants if k not in left_out]
        ask = [k for k in present if self.server.needs_scores(k)]
        answers = {k: (None, False) for k in present}
        failed: Dict[int, str] = {}
        if ask:
            replies = dict(self.transport.score(
                round_idx, [(self.node_of[k], k) for k in ask],
                self.server.score_query(), self.seed, self.fingerprint,
                self.round_timeout))
            for k in ask:
                reply = replies.get(self.node_of[k],
                                    'no reply within the round timeout')
                if not isinstance(reply, str) and tuple(reply[:2]) != (
                        k, round_idx):
                    reply = (f'answered for site {reply[0]}, round '
                             f'{reply[1]}')
                if isinstance(reply, str):
                    failed[k] = f'no cluster scores: {reply}'
                    answers.pop(k)
                    print_log(f'{self._round_name(round_idx)}: site {k} (node '
                              f'{self.node_of[k]}) left out: {failed[k]}',
                              logger='current', level=logging.WARNING)
                else:
                    answers[k] = (reply[2], reply[3])
        if len(answers) < self._needed:
            self._too_few(round_idx, f'{len(answers)} site(s) scored',
                          [f'site {k} (node {self.node_of[k]}): {why}'
                           for k, why in {**left_out, **failed}.items()])
        self.server.begin_round_at_sites(answers, len(ask))
        return failed

    def offline_sites(self, round_idx: int,
                      participants: List[int]) -> Dict[int, str]:
        """The round's participants whose node the transport holds offline
        now, with the reason; they are left out before any task is sent
        (the sampling is untouched, so a round where every node is online
        is the in-process round). A transport without ``online_nodes``
        holds every node online.

        Raises:
            RuntimeError: Too few participants online for ``min_results``,
                naming the round and every offline site and node.
        """
        online_nodes = getattr(self.transport, 'online_nodes', None)
        if online_nodes is None:
            return {}
        online = set(online_nodes())
        offline = {k: NODE_OFFLINE for k in participants
                   if self.node_of[k] not in online}
        for k, why in offline.items():
            print_log(f'{self._round_name(round_idx)}: site {k} (node '
                      f'{self.node_of[k]}) left out, no task sent: {why}',
                      logger='current', level=logging.WARNING)
        if offline and len(participants) - len(offline) < self._needed:
            self._too_few(
                round_idx,
                f'{len(participants) - len(offline)} site(s) online',
                [f'site {k} (node {self.node_of[k]}): {why}'
                 for k, why in offline.items()])
        return offline

    def fold(self, round_idx: int, participants: List[int],
             replies: List[Reply],
             left_out: Optional[Dict[int, str]] = None) -> int:
        """Fold the round's results in participant order (the in-process
        order of the sum); returns how many were admitted.

        Args:
            round_idx (int): The round.
            participants (list[int]): The sampled sites, in order.
            replies (list): ``(node, result | error)`` as received.
            left_out (dict, optional): Sites sent no task, with the reason
                (already logged); they count as missing results.

        Raises:
            RuntimeError: Fewer admitted results than ``min_results``,
                naming the round and every site left out and why.
        """
        left_out = left_out or {}
        by_node = dict(replies)
        admitted, problems = 0, []
        for k in participants:
            node = self.node_of[k]
            if k in left_out:
                problems.append(f'site {k} (node {node}): {left_out[k]}')
                continue
            reply = by_node.get(node, 'no reply within the round timeout')
            if isinstance(reply, ClientResult):
                reply = self._admit(round_idx, k, node, reply)
            if reply is None:
                admitted += 1
                continue
            problems.append(f'site {k} (node {node}): {reply}')
            print_log(f'{self._round_name(round_idx)}: site {k} (node '
                      f'{node}) left out: {reply}', logger='current',
                      level=logging.WARNING)
        if admitted < self._needed:
            self._too_few(round_idx, f'{admitted} result(s) admitted',
                          problems)
        return admitted

    @property
    def _needed(self) -> int:
        return max(self.min_results, 1)

    def _round_name(self, round_idx: int) -> str:
        return f'Round {round_idx + 1}/{self._max_epochs}'

    def _too_few(self, round_idx: int, what: str,
                 problems: List[str]) -> None:
        raise RuntimeError(
            f'{self._round_name(round_idx)}: {what}, fewer than '
            f'min-results={self.min_results}; missing: ' +
            '; '.join(problems))

    def _admit(self, round_idx: int, site: int, node: int,
               result: ClientResult) -> Optional[str]:
        if (result.client_id, result.round_idx) != (site, round_idx):
            return (f'answered for site {result.client_id}, round '
                    f'{result.round_idx}')
        try:
            self.server.add(result)
        except ClientUpdateRejected as e:
            return f'refused: {e}'
        return None

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """The in-process loop's checkpoint entry (no client states: they
        live at the sites)."""
        state = {'round': int(self._rounds_done), 'client_states': {},
                 'comm_bytes_total': int(self.comm_total)}
        state.update(self.server.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        """Keep a checkpoint's state; applied once the sites enrolled."""
        self._pending = state

    def _resume(self, state: dict) -> None:
        if int(state['round']) != self._epoch:
            raise ValueError(f"Checkpoint state is for round {state['round']}"
                             f' but the runner resumed at round {self._epoch}.')
        self.server.load_state_dict(state)
        self._rounds_done = self._epoch
        self.comm_total = int(state.get('comm_bytes_total', 0))
