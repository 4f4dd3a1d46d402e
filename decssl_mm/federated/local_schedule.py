"""Parameter schedules over total local progress instead of the round index.

With ``train_cfg.schedule_unit='round'`` (the default) the epoch-based
parameter schedulers advance once per round (mmengine's
``ParamSchedulerHook``), so every local step of round ``r`` uses the value
of epoch ``r``: a run of 1 round x 50 local epochs keeps the start learning
rate throughout, one of 50 rounds x 1 local epoch anneals it.

With ``schedule_unit='local_epoch'`` one scheduler epoch is one LOCAL epoch:
a scheduler of ``T_max = rounds x local_epochs`` gives local epoch ``e`` of
round ``r`` the value of epoch ``r x local_epochs + e``, whatever the split
of the total into rounds and local epochs. Every client of a round starts
from the round's start value and walks through its own local epochs (the
schedulers and optimizer hyper-parameters are restored before each client);
after the round the schedulers stand at ``(r + 1) x local_epochs`` (the
last of those steps is mmengine's ``ParamSchedulerHook.after_train_epoch``).
"""
import copy
from typing import Any, Iterable, List, Optional

SCHEDULE_UNITS = ('round', 'local_epoch')


def flat_schedulers(scheds: Any) -> List[Any]:
    """The runner's parameter schedulers as one list (dict: all optims)."""
    if scheds is None:
        return []
    if isinstance(scheds, dict):
        return [s for v in scheds.values() for s in v]
    return list(scheds)


def _optimizers(scheds: Iterable[Any]) -> List[Any]:
    out: List[Any] = []
    for s in scheds:
        opt = getattr(s, 'optimizer', None)
        if opt is not None and all(opt is not o for o in out):
            out.append(opt)
    return out


class LocalEpochSchedule:
    """Steps epoch-based schedulers per local epoch of every client.

    Args:
        local_epochs (int): Local epochs per client per round.
    """

    def __init__(self, local_epochs: int) -> None:
        self.local_epochs = int(local_epochs)
        self._scheds: List[Any] = []
        self._saved: Optional[tuple] = None
        self._steps_per_epoch = 0
        self._client_steps = 0

    def begin_round(self, scheds: Any) -> None:
        """Keep the schedulers' and optimizers' round-start state."""
        self._scheds = [s for s in flat_schedulers(scheds)
                        if getattr(s, 'by_epoch', True)]
        opts = _optimizers(self._scheds)
        groups = [[{k: copy.deepcopy(v) for k, v in g.items() if k !=
                    'params'} for g in o.param_groups] for o in opts]
        states = [copy.deepcopy(s.state_dict()) for s in self._scheds]
        self._saved = (opts, groups, states)

    def _restore(self) -> None:
        opts, groups, states = self._saved
        for opt, saved in zip(opts, groups):
            for g, values in zip(opt.param_groups, saved):
                g.update(copy.deepcopy(values))
        for s, state in zip(self._scheds, states):
            s.load_state_dict(copy.deepcopy(state))

    def _step(self) -> None:
        for s in self._scheds:
            s.step()

    def begin_client(self, num_batches: int) -> None:
        """A client (or a retry) starts: round-start values again.

        Args:
            num_batches (int): The client's batches this round
                (``local_epochs`` x its batches per local epoch).
        """
        if self._saved is None:
            return
        self._restore()
        self._steps_per_epoch = max(1, num_batches // self.local_epochs)
        self._client_steps = 0

    def after_step(self) -> None:
        """After a local step: at a local-epoch boundary, step once."""
        if self._saved is None:
            return
        self._client_steps += 1
        done, rest = divmod(self._client_steps, self._steps_per_epoch)
        if rest == 0 and done < self.local_epochs:
            self._step()

    def end_round(self) -> None:
        """Leave the schedulers one step short of the next round's start;
        ``ParamSchedulerHook.after_train_epoch`` makes that step."""
        if self._saved is None:
            return
        self._restore()
        for _ in range(self.local_epochs - 1):
            self._step()
        self._saved = None
