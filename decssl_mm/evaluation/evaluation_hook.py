"""Periodic evaluation of the global model during (federated) training, by
registered evaluations."""
from typing import Dict, Optional, Sequence, Tuple, Union

from mmengine.dist import barrier, get_rank
from mmengine.hooks import Hook

from decssl_mm.registry import HOOKS
from .evaluations import BaseEvaluation, build_evaluations, run_evaluations
from .knn import build_knn_dataloader, unwrap_model

__all__ = ['EvaluationHook']

Figures = Dict[str, Dict[str, float]]


def _pretty(metric: str) -> str:
    """``'top1'`` -> ``'top-1'``."""
    return f'top-{metric[3:]}' if metric.startswith('top') else metric


@HOOKS.register_module()
class EvaluationHook(Hook):
    """Evaluate the global model every few epochs by registered evaluations.

    In a federated run an epoch is a communication round, and ``after_train
    _epoch`` sees the aggregated global model in ``runner.model``. Each
    evaluation (``EVALUATIONS``: ``'knn'``, ``'linear'``, ``'ncm'``, ...,
    each also as ``<name>_bnre``) runs on frozen features extracted in eval
    mode (no augmentation: give the dataloaders a deterministic pipeline)
    and writes ``<name>/<metric>`` (percent) to the message hub, the
    visualizer (step = epochs done) and the log. The last epoch is always
    evaluated.

    Beside them, the same network untrained
    (:mod:`decssl_mm.evaluation.untrained`), same protocol and data:
    ``<name>/<metric>_untrained_init`` (the model's own initialisation with
    the runner's seed: where training starts) and
    ``<name>/<metric>_untrained_default`` (PyTorch's default
    initialisation: random features). They are computed once, at the first
    evaluation, under a private random state (training is not affected),
    and logged with every evaluation; per evaluation the log ends with e.g.
    ``kNN top-1 T (untrained: A model init, B PyTorch default init)``.

    Under a distributed launch only rank 0 computes (reading every sample
    itself); the other ranks wait on a barrier.

    Args:
        evaluations (Sequence[str | dict]): Registered names or dicts
            ``dict(type=name, **settings)``. Defaults to ``('knn', )``.
        train_dataloader (dict, optional): Dataloader config of the labelled
            bank split (``dataset``, ``batch_size``, ``num_workers``,
            ``collate_fn``; the sampler is ignored). None (with
            ``val_dataloader`` None): the config's ``knn_train_dataloader``
            (:func:`decssl_mm.evaluation.find_eval_loaders`).
        val_dataloader (dict, optional): Dataloader config of the queries;
            None: the config's ``knn_val_dataloader``.
        interval (int): Evaluate every ``interval`` epochs (rounds).
            Defaults to 1.
        untrained_reference (bool): Also report the untrained references.
            Defaults to True.
    """

    priority = 'LOW'

    def __init__(self,
                 evaluations: Sequence[Union[str, dict]] = ('knn', ),
                 train_dataloader: Optional[dict] = None,
                 val_dataloader: Optional[dict] = None,
                 interval: int = 1,
                 untrained_reference: bool = True) -> None:
        hook = type(self).__name__
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        if (train_dataloader is None) != (val_dataloader is None):
            raise ValueError(f'{hook}: give both train_dataloader and '
                             'val_dataloader, or neither (then the '
                             "config's knn_train_dataloader and "
                             'knn_val_dataloader are used)')
        for name, cfg in (('train_dataloader', train_dataloader),
                          ('val_dataloader', val_dataloader)):
            if cfg is not None and (not isinstance(cfg, dict)
                                    or 'dataset' not in cfg):
                raise ValueError(f'{name} must be a dataloader config with a '
                                 f'dataset, got {cfg!r}')
        self.evaluations = build_evaluations(
            evaluations, source=f'custom_hooks[type={hook}].evaluations')
        self.train_dataloader_cfg = train_dataloader
        self.val_dataloader_cfg = val_dataloader
        self.interval = interval
        self.untrained_reference = untrained_reference
        self._loaders: Optional[Tuple] = None
        self._references: Optional[Dict[str, Figures]] = None
        self._seed = 0

    def before_run(self, runner) -> None:
        """Find the evaluation loaders of the config and the run's seed."""
        if self.train_dataloader_cfg is None:
            from .loaders import find_eval_loaders
            self.train_dataloader_cfg, self.val_dataloader_cfg = \
                find_eval_loaders(runner.cfg)
        self._seed = self._run_seed(runner)

    def after_train_epoch(self, runner) -> None:
        """Evaluate every ``interval`` epochs and after the last one."""
        if (self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            self.evaluate(runner)

    def evaluate(self, runner) -> Optional[Figures]:
        """Run the evaluations now; return ``{name: {metric: value}}`` on
        rank 0 (references as ``<metric>_<reference>``)."""
        figures = None
        if get_rank() == 0:
            figures = self._evaluate_model(unwrap_model(runner.model))
            if self.untrained_reference:
                for ref, values in self._untrained(runner).items():
                    for name, metrics in values.items():
                        figures[name].update(
                            {f'{k}_{ref}': v for k, v in metrics.items()})
            self._log(runner, figures)
        barrier()
        return figures

    @staticmethod
    def _run_seed(runner) -> int:
        seed = getattr(runner, 'seed', None)
        if seed is None:
            seed = (runner.cfg.get('randomness') or {}).get('seed') or 0
        return int(seed)

    def _evaluate_model(self, model) -> Figures:
        if self._loaders is None:
            self._build_loaders()
        param = next(iter(model.parameters()), None)
        device = str(param.device) if param is not None else 'cpu'
        return run_evaluations(model, *self._loaders, self.evaluations,
                               seed=self._seed, device=device)

    def _build_loaders(self) -> None:
        """Build the two dataloaders (once)."""
        if self.train_dataloader_cfg is None:
            raise RuntimeError(f'{type(self).__name__}: no dataloaders '
                               '(before_run was not called and none were '
                               'given)')
        self._loaders = (build_knn_dataloader(self.train_dataloader_cfg),
                         build_knn_dataloader(self.val_dataloader_cfg))

    def _untrained(self, runner) -> Dict[str, Figures]:
        """The untrained references (computed at the first call)."""
        if self._references is None:
            from .untrained import untrained_metrics
            model = unwrap_model(runner.model)
            param = next(iter(model.parameters()), None)
            device = str(param.device) if param is not None else 'cpu'
            self._references = untrained_metrics(
                runner.cfg, self._evaluate_model, self._seed, device)
        return self._references

    def scalar_prefix(self, evaluation: BaseEvaluation) -> str:
        """Prefix of the logged scalars of ``evaluation`` (its name)."""
        return evaluation.name

    def _log(self, runner, figures: Figures) -> None:
        step = runner.epoch + 1
        for evaluation in self.evaluations:
            metrics = figures[evaluation.name]
            prefix = self.scalar_prefix(evaluation)
            scalars = {f'{prefix}/{k}': v for k, v in metrics.items()}
            for key, value in scalars.items():
                runner.message_hub.update_scalar(key, value)
            runner.visualizer.add_scalars(scalars, step=step)
            text = ', '.join(f'{k}: {v:.2f}' for k, v in scalars.items())
            runner.logger.info(f'Epoch {step} {evaluation.describe()}: '
                               f'{text}')
            runner.logger.info(f'Epoch {step}: '
                               f'{self.summary(evaluation, metrics)}')

    @staticmethod
    def summary(evaluation: BaseEvaluation, metrics: Dict[str, float]) -> str:
        """``kNN top-1 T (untrained: A model init, B PyTorch default
        init)`` for the headline metric of ``evaluation``."""
        key = evaluation.report[0]
        label = (evaluation.label or evaluation.base_name) + \
            (' after BN re-estimation' if evaluation.bn_reestimate else '')
        text = f'{label} {_pretty(key)}'
        if key in metrics:
            text += f' {metrics[key]:.2f}'
        from .untrained import untrained_suffix
        return text + untrained_suffix(metrics, key)
