"""Carry the federated loop's state through mmengine checkpoints."""
from mmengine.hooks import Hook

from decssl_mm.registry import HOOKS


@HOOKS.register_module()
class FederatedStateHook(Hook):
    """Save and restore the federated loop's state with each checkpoint.

    The federated loop registers this hook itself. The checkpoint gets a
    ``federated`` entry (round, aggregator/server-optimizer state, the
    client-state index) next to mmengine's model, optimizer, scheduler and
    message-hub entries; ``--resume`` restores it. The client sampler is a
    pure function of ``(seed, round)`` and needs no state.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _loop(runner):
        # the built train loop, if it is federated (a config dict before
        # the loop is built, or another loop, has no federated state)
        loop = getattr(runner, '_train_loop', None)
        return loop if getattr(loop, 'is_federated', False) else None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        loop = self._loop(runner)
        if loop is not None:
            checkpoint['federated'] = loop.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        loop = self._loop(runner)
        if loop is not None and 'federated' in checkpoint:
            loop.load_state_dict(checkpoint['federated'])
