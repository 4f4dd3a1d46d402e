"""A site's part of a round: one client's local training, as in process."""
from typing import Optional

import torch
from mmengine.runner.base_loop import BaseLoop

from decssl_mm.federated.batch_plan import client_round_plan
from decssl_mm.federated.messages import ClientResult, ClientTask
from decssl_mm.federated.round_data import client_loader
from decssl_mm.registry import CLIENT_TRAINERS
from decssl_mm.utils.registry_utils import build_checked


def step_schedulers(param_schedulers, rounds: int) -> None:
    """Step the epoch-based schedulers ``rounds`` times: the values of round
    ``rounds``, as the in-process loop's ``ParamSchedulerHook`` reaches
    them."""
    if not param_schedulers:
        return
    groups = param_schedulers.values() if isinstance(
        param_schedulers, dict) else [param_schedulers]
    for _ in range(int(rounds)):
        for group in groups:
            for scheduler in group:
                if scheduler.by_epoch:
                    scheduler.step()


class SiteFitLoop(BaseLoop):
    """Run one :class:`ClientTask` on a site's own data.

    The site's Runner (model, optimizer, schedulers, iteration hooks) is
    built from the shared config; this loop replaces its train loop for
    one task: the schedulers are brought to the task's round, the
    registered client trainer (``train_cfg.trainer``) trains the site's
    planned batches (:func:`client_round_plan`, the site being client
    ``task.client_id``) and the result is kept in :attr:`result`.

    Args:
        runner (Runner): The site's runner.
        dataloader (dict): ``train_dataloader`` over the site's
            single-client dataset (round batch sampler).
        task (ClientTask): The server's task.
        local_state (dict, optional): What the site kept from its last
            round.
        train_cfg (dict): The config's ``train_cfg``.
    """

    def __init__(self, runner, dataloader: dict, task: ClientTask,
                 local_state: Optional[dict], train_cfg: dict) -> None:
        super().__init__(runner, dataloader)
        self.task = task
        self.local_state = local_state
        self.train_cfg = dict(train_cfg)
        self.result: Optional[ClientResult] = None
        self._batches: Optional[list] = None
        self._iter = 0
        unit = self.train_cfg.get('schedule_unit', 'round')
        if unit != 'round' and int(self.train_cfg.get('local_epochs') or
                                   1) > 1:
            raise ValueError(
                "Over Flower, train_cfg.schedule_unit must be 'round' (got "
                f'{unit!r} with several local epochs).')
        self.trainer = build_checked(
            CLIENT_TRAINERS, self.train_cfg.get('trainer'),
            'train_cfg.trainer', 'ClientTrainer',
            optimizer_policy=self.train_cfg.get('optimizer_policy',
                                                'reset'))

    @property
    def max_epochs(self) -> int:
        """The task's round + 1 (for hooks that read it)."""
        return int(self.task.round_idx) + 1

    @property
    def max_iters(self) -> int:
        """Planned batches of the task."""
        return len(self.batches())

    @property
    def epoch(self) -> int:
        """The task's round."""
        return int(self.task.round_idx)

    @property
    def iter(self) -> int:
        """Local iterations run so far in this task."""
        return self._iter

    def batches(self) -> list:
        """The site's batches of the round: ``(local index, seed)``
        (planned once per task)."""
        if self._batches is not None:
            return self._batches
        dataset = self.dataloader.dataset
        sampler = self.dataloader.batch_sampler
        self._batches = client_round_plan(
            dataset.client_indices(0), self.task.seed, self.task.round_idx,
            self.task.client_id, sampler.batch_size,
            local_epochs=self.train_cfg.get('local_epochs'),
            local_iters=self.train_cfg.get('local_iters'),
            drop_last=sampler.drop_last)
        return self._batches

    def run_iter(self, idx: int, data_batch, step):
        """One local step inside the train-iteration hooks."""
        self.runner.call_hook('before_train_iter', batch_idx=idx,
                              data_batch=data_batch)
        outputs = step(data_batch)
        self.runner.call_hook('after_train_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs)
        self._iter += 1
        return outputs

    def run(self) -> torch.nn.Module:
        """Train the task; the result goes to :attr:`result`."""
        runner = self.runner
        runner.call_hook('before_train')
        step_schedulers(runner.param_schedulers, self.task.round_idx)
        runner.call_hook('before_train_epoch')
        model = getattr(runner.model, 'module', runner.model)
        self.trainer.setup(runner.model, runner.optim_wrapper,
                           self.dataloader.dataset, self.run_iter)
        model.train()
        self.trainer.begin_round(self.task.round_idx)
        runner.message_hub.update_info('client_id', int(self.task.client_id))
        loader = client_loader(self.dataloader, self.batches())
        # the logger reads the loop's loader: its length is the task's
        self.dataloader = loader
        self.result = self.trainer.fit(self.task, loader, self.local_state)
        runner.call_hook('after_train')
        return runner.model
