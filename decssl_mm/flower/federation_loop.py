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
    sites, ``server.begin_round``, ``server.configure`` per participant,
    send the tasks and wait (``round_timeout``), fold the results with
    ``server.add`` in participant order (a refused result is logged with
    its node and left out), ``server.finish_round``, the global model into
    the runner's model, the ``after_train_epoch`` hooks (checkpoint). The
    checkpoint has the in-process ``federated`` entry, so resume and
    ``extract_backbone.py`` work unchanged.

    Args:
        runner (Runner): The server's runner (no training data).
        transport: ``enrol(fingerprint) -> roster`` and
            ``fit(round_idx, [(node, task)], fingerprint, timeout) ->
            [(node, result | error)]``.
        train_cfg (dict): The config's ``train_cfg``.
        fingerprint (str): The config's fingerprint (sent in each task).
        round_timeout (float, optional): Seconds to wait for a round's
            results. None: no limit.
        min_results (int): Fewest admitted results a round needs.
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
            raise ValueError(f'{type(self.server).__name__} keeps a memo per '
                             'client; it does not run over Flower yet.')
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
        self.server.begin_round(r, participants, None)
        sends = [(self.node_of[k], self.server.configure(
            k, r, int(self.client_sizes[k]))) for k in participants]
        replies = self.transport.fit(r, sends, self.fingerprint,
                                     self.round_timeout)
        admitted = self.fold(r, participants, replies)
        extra = self.server.finish_round(r)
        copy_state(self.model.state_dict(), self.global_state)
        self.comm_total += 2 * self.server.exchanged_bytes * admitted
        scalars = {'round/clients': float(admitted),
                   'comm/bytes_total': float(self.comm_total)}
        scalars.update({k: v for k, v in extra.items()
                        if k != 'comm/extra_bytes'})
        log_round_scalars(self.runner, r, scalars)
        print_log(f'Round {r + 1}/{self._max_epochs}: {admitted} of '
                  f'{len(participants)} sites admitted.', logger='current')
        self._rounds_done = r + 1
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def fold(self, round_idx: int, participants: List[int],
             replies: List[Reply]) -> int:
        """Fold the round's results in participant order (the in-process
        order of the sum); returns how many were admitted.

        Raises:
            RuntimeError: Fewer admitted results than ``min_results``.
        """
        by_node = dict(replies)
        admitted, problems = 0, []
        for k in participants:
            node = self.node_of[k]
            reply = by_node.get(node, 'no reply within the round timeout')
            if isinstance(reply, ClientResult):
                reply = self._admit(round_idx, k, node, reply)
            if reply is None:
                admitted += 1
                continue
            problems.append(f'site {k} (node {node}): {reply}')
            print_log(f'Round {round_idx}: site {k} (node {node}) left out: '
                      f'{reply}', logger='current', level=logging.WARNING)
        if admitted < max(self.min_results, 1):
            raise RuntimeError(
                f'Round {round_idx}: {admitted} result(s) admitted, fewer '
                f'than min-results={self.min_results}: ' +
                '; '.join(problems))
        return admitted

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
