"""Test-only components for the reliability tests.

Importing this module registers, in decssl_mm's registries:

- ``ClientFaultHook``: makes chosen clients fail (raise, or NaN weights);
- ``KillPointHook``: stops the process at a chosen point and waits to be
  killed from outside (``kill -9``), see :func:`kill_point_from_env`;
- ``AttackedTrainer`` (and the ``AttackedTrainLoop`` config type that
  uses it): clients that send a
  scaled or sign-flipped update;
- ``KillWorkerOnSample``: a transform that ends the dataloader worker
  process loading one of the chosen samples (``os._exit``).

It is imported by the tests and, in subprocesses, through the dumped
config's ``custom_imports`` (``PYTHONPATH`` must include ``tests/``).
"""
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmcv.transforms import BaseTransform
from mmengine.hooks import Hook
from torch.utils.data import get_worker_info

from decssl_mm.federated import FederatedTrainLoop
from decssl_mm.federated.trainers import ClientTrainer
from decssl_mm.registry import CLIENT_TRAINERS, HOOKS, LOOPS, TRANSFORMS

#: Environment variable naming the kill point of a training subprocess.
KILL_ENV = 'DECSSL_TEST_KILL_AT'
#: File written (in the work dir) when the kill point is reached.
READY_FILE = '_kill_point_reached'


def _round_and_client(runner):
    loop = runner.train_loop
    return loop.epoch, runner.message_hub.get_info('client_id')


@HOOKS.register_module()
class ClientFaultHook(Hook):
    """Make chosen clients fail during their local training.

    Args:
        faults (Sequence[dict]): Each ``dict(client=k, kind=..., round=r,
            times=n)``: ``kind='raise'`` raises a RuntimeError at the client's
            first local iteration, ``kind='nan'`` writes NaN into its weights
            after each local iteration (its update is then non-finite);
            ``round`` None means every round; ``times`` is how many attempts
            fail (None: all).
    """

    priority = 'LOW'

    def __init__(self, faults: Sequence[dict]) -> None:
        self.faults = [dict(f) for f in faults]
        self.failures: Dict[tuple, int] = {}

    def _match(self, runner, kind: str) -> Optional[dict]:
        r, k = _round_and_client(runner)
        for f in self.faults:
            if f['kind'] == kind and f['client'] == k and \
                    f.get('round') in (None, r):
                return f
        return None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        f = self._match(runner, 'raise')
        if f is None:
            return
        key = _round_and_client(runner)
        done = self.failures.get(key, 0)
        if f.get('times') is None or done < f['times']:
            self.failures[key] = done + 1
            raise RuntimeError(f'injected failure of client {key[1]}')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._match(runner, 'nan') is None:
            return
        model = runner.train_loop.model
        with torch.no_grad():
            next(model.parameters()).fill_(float('nan'))


@TRANSFORMS.register_module()
class KillWorkerOnSample(BaseTransform):
    """End the dataloader worker that loads one of ``samples``.

    Like a segfaulting decoder: the worker process exits (``os._exit(3)``)
    without a Python error. In the main process (``num_workers=0``) it
    does nothing, so a retry through a single-process loader would pass.

    Args:
        samples (Sequence[int]): ``sample_idx`` values that kill a worker
            (settable on the built transform before workers start).
    """

    def __init__(self, samples: Sequence[int] = ()) -> None:
        self.samples = {int(i) for i in samples}

    def transform(self, results: dict) -> dict:
        if results.get('sample_idx') in self.samples and \
                get_worker_info() is not None:
            os._exit(3)
        return results


def _wait_to_be_killed(work_dir: str, what: str) -> None:
    with open(osp.join(work_dir, READY_FILE), 'w') as f:
        f.write(what)
    time.sleep(600)
    raise SystemExit('kill point reached but nobody killed the process')


def kill_point_from_env() -> Optional[dict]:
    """The kill point of this process: ``KIND:ROUND[:ITER]`` in the env.

    ``mid_round:R:I``: before local iteration ``I`` of round ``R`` (counted
    within the round); ``mid_checkpoint:E``: half-way through writing the
    checkpoint of epoch ``E``; ``before_pointer:E``: after ``epoch_E.pth`` is
    in place, before ``last_checkpoint`` points at it.
    """
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    parts = spec.split(':')
    return dict(kind=parts[0], at=[int(p) for p in parts[1:]])


@HOOKS.register_module()
class KillPointHook(Hook):
    """Freeze the process at the point named by :data:`KILL_ENV`.

    The hook writes :data:`READY_FILE` in the work dir and sleeps; the test
    then kills the process with SIGKILL. Without the variable it does
    nothing, so the same config gives the uninterrupted reference run.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.point = kill_point_from_env()
        self._round_iter = 0
        self._round = -1

    def before_train(self, runner) -> None:
        if self.point is None:
            return
        kind, at = self.point['kind'], self.point['at']
        if kind == 'mid_checkpoint':
            self._freeze_in_checkpoint_write(runner.work_dir, at[0])
        elif kind == 'before_pointer':
            self._freeze_before_pointer(runner.work_dir, at[0])

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.point is None or self.point['kind'] != 'mid_round':
            return
        r = runner.train_loop.epoch
        if r != self._round:
            self._round, self._round_iter = r, 0
        if [r, self._round_iter] == self.point['at']:
            _wait_to_be_killed(runner.work_dir, f'round {r} iter '
                               f'{self._round_iter}')
        self._round_iter += 1

    @staticmethod
    def _freeze_in_checkpoint_write(work_dir: str, epoch: int) -> None:
        """Freeze half-way through writing ``epoch_<epoch>.pth``: half of
        the bytes are in the temporary file, none under the final name."""
        from decssl_mm.engine import AtomicLocalBackend
        from decssl_mm.utils.io import atomic_write
        real_put = AtomicLocalBackend.put

        def put(self, obj: bytes, filepath) -> None:
            if not str(filepath).endswith(f'epoch_{epoch}.pth'):
                return real_put(self, obj, filepath)

            def torn_write(f) -> None:
                f.write(obj[:len(obj) // 2])  # a torn write ...
                f.flush()
                os.fsync(f.fileno())
                _wait_to_be_killed(work_dir, f'writing epoch {epoch}')

            atomic_write(str(filepath), torn_write)

        AtomicLocalBackend.put = put

    @staticmethod
    def _freeze_before_pointer(work_dir: str, epoch: int) -> None:
        from decssl_mm.engine import AtomicCheckpointHook
        real_write = AtomicCheckpointHook.write_pointer

        def write(self, runner, checkpoint: str) -> None:
            if checkpoint.endswith(f'epoch_{epoch}.pth'):
                _wait_to_be_killed(work_dir, f'pointer to epoch {epoch}')
            real_write(self, runner, checkpoint)

        AtomicCheckpointHook.write_pointer = write


@CLIENT_TRAINERS.register_module()
class AttackedTrainer(ClientTrainer):
    """A client trainer whose attackers send manipulated updates.

    Args:
        attackers (Sequence[int]): The malicious clients.
        attack (str): ``'scale'`` (update times ``factor``) or ``'flip'``
            (update times ``-factor``).
        factor (float): Size of the manipulation. Defaults to 1000.
        claimed_samples (int, optional): Sample count the attackers report
            instead of their own. Defaults to None.
        **kwargs: See :class:`ClientTrainer`.
    """

    def __init__(self, attackers: Sequence[int] = (), attack: str = 'scale',
                 factor: float = 1000.0,
                 claimed_samples: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attackers: List[int] = [int(a) for a in attackers]
        self.attack = attack
        self.factor = float(factor)
        self.claimed_samples = claimed_samples

    def upload(self, task, state):
        state, num_samples = super().upload(task, state)
        if int(task.client_id) not in self.attackers:
            return state, num_samples
        sign = -1.0 if self.attack == 'flip' else 1.0
        start = task.start_state
        state = dict(state)
        for k in task.exchanged_keys:
            g = start[k]
            if g.is_floating_point():
                state[k] = g + sign * self.factor * (state[k] - g)
        if self.claimed_samples is not None:
            num_samples = int(self.claimed_samples)
        return state, num_samples


@LOOPS.register_module(name='AttackedTrainLoop')
def attacked_train_loop(runner, dataloader, attackers: Sequence[int] = (),
                        attack: str = 'scale', factor: float = 1000.0,
                        claimed_samples: Optional[int] = None,
                        **kwargs) -> FederatedTrainLoop:
    """The federated loop with :class:`AttackedTrainer` clients."""
    trainer = dict(type='AttackedTrainer', attackers=list(attackers),
                   attack=attack, factor=factor,
                   claimed_samples=claimed_samples)
    return FederatedTrainLoop(runner, dataloader, trainer=trainer, **kwargs)
