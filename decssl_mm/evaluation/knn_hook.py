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

    Beside them, the same network untrained
    (:mod:`decssl_mm.evaluation.untrained`), same protocol and data:
    ``knn/top1_untrained_init`` (the model's own initialisation with the
    runner's seed: where training starts) and ``knn/top1_untrained_default``
    (PyTorch's default initialisation: random features), likewise for
    top-5. They are computed once, at the first evaluation, under a private
    random state (training is not affected), and logged with every
    evaluation; the log ends with ``kNN top-1 T (untrained: A model init,
    B PyTorch default init)`` (T trained, A and B untrained).

    Under a distributed launch only rank 0 computes (reading every sample
    itself); the other ranks wait on a barrier.

    Args:
        train_dataloader (dict, optional): Dataloader config of the labelled
            feature bank (``dataset``, ``batch_size``, ``num_workers``,
            ``collate_fn``; the sampler is ignored). None (with
            ``val_dataloader`` None): the config's ``knn_train_dataloader``
            (:func:`decssl_mm.evaluation.find_eval_loaders`).
        val_dataloader (dict, optional): Dataloader config of the queries;
            None: the config's ``knn_val_dataloader``.
        interval (int): Evaluate every ``interval`` epochs (rounds).
            Defaults to 1.
        k (int): Number of neighbours. Defaults to 200.
        temperature (float): Temperature of the neighbour weights.
            Defaults to 0.1.
        feature (str): ``'backbone'`` (default) or ``'neck'``.
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).
        prefix (str): Name prefix of the logged scalars. Defaults to
            ``'knn'``.
        untrained_reference (bool): Also report the untrained references.
            Defaults to True.
    """

    priority = 'LOW'

    def __init__(self,
                 train_dataloader: Optional[dict] = None,
                 val_dataloader: Optional[dict] = None,
                 interval: int = 1,
                 k: int = 200,
                 temperature: float = 0.1,
                 feature: str = 'backbone',
                 topk: Sequence[int] = (1, 5),
                 prefix: str = 'knn',
                 untrained_reference: bool = True) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        if feature not in ('backbone', 'neck'):
            raise ValueError(f"feature must be 'backbone' or 'neck', got "
                             f'{feature!r}')
        if (train_dataloader is None) != (val_dataloader is None):
            raise ValueError('KNNEvalHook: give both train_dataloader and '
                             'val_dataloader, or neither (then the '
                             "config's knn_train_dataloader and "
                             'knn_val_dataloader are used)')
        for name, cfg in (('train_dataloader', train_dataloader),
                          ('val_dataloader', val_dataloader)):
            if cfg is not None and (not isinstance(cfg, dict)
                                    or 'dataset' not in cfg):
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
        self.untrained_reference = untrained_reference
        self._loaders = None
        self._references: Optional[Dict[str, Dict[str, float]]] = None

    def before_run(self, runner) -> None:
        """Find the evaluation loaders of the config before training."""
        if self.train_dataloader_cfg is None:
            from .loaders import find_eval_loaders
            self.train_dataloader_cfg, self.val_dataloader_cfg = \
                find_eval_loaders(runner.cfg)

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
            if self.untrained_reference:
                for name, ref in self._untrained(runner).items():
                    metrics.update({f'{k}_{name}': v for k, v in ref.items()})
            self._log(runner, metrics)
        barrier()
        return metrics

    def _evaluate_model(self, model) -> Dict[str, float]:
        if self._loaders is None:
            self._build_loaders()
        return knn_evaluate(model, *self._loaders, k=self.k,
                            temperature=self.temperature,
                            feature=self.feature, topk=self.topk)

    def _build_loaders(self) -> None:
        """Build the two dataloaders (once)."""
        if self.train_dataloader_cfg is None:
            raise RuntimeError('KNNEvalHook: no dataloaders (before_run was '
                               'not called and none were given)')
        self._loaders = (build_knn_dataloader(self.train_dataloader_cfg),
                         build_knn_dataloader(self.val_dataloader_cfg))

    def _compute(self, runner) -> Dict[str, float]:
        return self._evaluate_model(unwrap_model(runner.model))

    def _untrained(self, runner) -> Dict[str, Dict[str, float]]:
        """The untrained references (computed at the first call)."""
        if self._references is None:
            from .untrained import untrained_metrics
            model = unwrap_model(runner.model)
            param = next(iter(model.parameters()), None)
            device = str(param.device) if param is not None else 'cpu'
            seed = getattr(runner, 'seed', None)
            if seed is None:
                seed = (runner.cfg.get('randomness') or {}).get('seed') or 0
            self._references = untrained_metrics(
                runner.cfg, self._evaluate_model, int(seed), device)
        return self._references

    def _log(self, runner, metrics: Dict[str, float]) -> None:
        scalars = {f'{self.prefix}/{k}': v for k, v in metrics.items()}
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        step = runner.epoch + 1
        runner.visualizer.add_scalars(scalars, step=step)
        text = ', '.join(f'{k}: {v:.2f}' for k, v in scalars.items())
        runner.logger.info(f'Epoch {step} kNN (k={self.k}, '
                           f'T={self.temperature}): {text}')
        summary = f'kNN top-1 {metrics["top1"]:.2f}' \
            if 'top1' in metrics else 'kNN'
        if 'top1_untrained_init' in metrics:
            summary += (f' (untrained: {metrics["top1_untrained_init"]:.2f} '
                        'model init, '
                        f'{metrics["top1_untrained_default"]:.2f} PyTorch '
                        'default init)')
        runner.logger.info(f'Epoch {step}: {summary}')
