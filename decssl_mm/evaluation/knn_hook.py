"""Periodic kNN evaluation of the global model during (federated) training."""
from typing import Dict, Optional, Sequence

from mmengine.dist import barrier, get_rank
from mmengine.hooks import Hook

from decssl_mm.registry import HOOKS
from .knn import build_knn_dataloader, knn_evaluate, unwrap_model

__all__ = ['KNNEvalHook']


@HOOKS.register_module()
class KNNEvalHook(Hook):
    """Log the weighted-kNN accuracy of the global model every few epochs.

    In a federated run an epoch is a communication round, and ``after_train
    _epoch`` sees the aggregated global model in ``runner.model``. Features
    are extracted in eval mode (no augmentation: give the dataloaders a
    deterministic pipeline) as the global-average-pooled last backbone
    stage, then classified by :func:`decssl_mm.evaluation.knn_accuracy`.
    The results are written as ``knn/top1`` and ``knn/top5`` (percent) to
    the message hub, the visualizer (step = epochs done) and the log. The
    last epoch is always evaluated.

    Under a distributed launch only rank 0 computes (reading every sample
    itself); the other ranks wait on a barrier.

    Args:
        train_dataloader (dict): Dataloader config of the labelled feature
            bank (``dataset``, ``batch_size``, ``num_workers``,
            ``collate_fn``; the sampler is ignored).
        val_dataloader (dict): Dataloader config of the queries.
        interval (int): Evaluate every ``interval`` epochs (rounds).
            Defaults to 1.
        k (int): Number of neighbours. Defaults to 200.
        temperature (float): Temperature of the neighbour weights.
            Defaults to 0.1.
        feature (str): ``'backbone'`` (default) or ``'neck'``.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        prefix (str): Name prefix of the logged scalars. Defaults to
            ``'knn'``.
    """

    priority = 'LOW'

    def __init__(self,
                 train_dataloader: dict,
                 val_dataloader: dict,
                 interval: int = 1,
                 k: int = 200,
                 temperature: float = 0.1,
                 feature: str = 'backbone',
                 topk: Sequence[int] = (1, 5),
                 prefix: str = 'knn') -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        if feature not in ('backbone', 'neck'):
            raise ValueError(f"feature must be 'backbone' or 'neck', got "
                             f'{feature!r}')
        for name, cfg in (('train_dataloader', train_dataloader),
                          ('val_dataloader', val_dataloader)):
            if not isinstance(cfg, dict) or 'dataset' not in cfg:
                raise ValueError(f'{name} must be a dataloader config with a '
                                 f'dataset, got {cfg!r}')
        self.train_dataloader_cfg = train_dataloader
        self.val_dataloader_cfg = val_dataloader
        self.interval = interval
        self.k = k
        self.temperature = temperature
        self.feature = feature
        self.topk = tuple(topk)
        self.prefix = prefix
        self._loaders = None

    def after_train_epoch(self, runner) -> None:
        """Evaluate every ``interval`` epochs and after the last one."""
        if (self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            self.evaluate(runner)

    def evaluate(self, runner) -> Optional[Dict[str, float]]:
        """Run the evaluation now; return the metrics on rank 0."""
        metrics = None
        if get_rank() == 0:
            metrics = self._compute(runner)
            self._log(runner, metrics)
        barrier()
        return metrics

    def _compute(self, runner) -> Dict[str, float]:
        if self._loaders is None:
            self._loaders = (build_knn_dataloader(self.train_dataloader_cfg),
                             build_knn_dataloader(self.val_dataloader_cfg))
        model = unwrap_model(runner.model)
        return knn_evaluate(model, *self._loaders, k=self.k,
                            temperature=self.temperature,
                            feature=self.feature, topk=self.topk)

    def _log(self, runner, metrics: Dict[str, float]) -> None:
        scalars = {f'{self.prefix}/{k}': v for k, v in metrics.items()}
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        step = runner.epoch + 1
        runner.visualizer.add_scalars(scalars, step=step)
        text = ', '.join(f'{k}: {v:.2f}' for k, v in scalars.items())
        runner.logger.info(f'Epoch {step} kNN (k={self.k}, '
                           f'T={self.temperature}): {text}')
