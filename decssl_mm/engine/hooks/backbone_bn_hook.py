"""Re-estimate a frozen backbone's BatchNorm statistics before training."""
from typing import Optional

from mmengine.hooks import Hook

from decssl_mm.registry import HOOKS


@HOOKS.register_module()
class BackboneBNRecalibrationHook(Hook):
    """Recompute the running statistics of the backbone's BatchNorm layers
    on the training images, once, before the first iteration.

    The frozen-backbone protocol of the downstream evaluation
    (``configs/downstream/fmnist_det/*_frozen.py``) keeps every backbone's
    weights and BatchNorm layers fixed (``frozen_stages=4``,
    ``norm_eval=True``). Running statistics that do not describe the
    backbone's features on the new images (an untrained backbone's initial
    ones, or those of another image domain) would then decide the result
    more than the weights; this hook gives every backbone, pretrained or
    not, statistics measured on the same training batches, as the linear
    probe does (:func:`decssl_mm.evaluation.recalibrate_bn`: the plain mean
    over ``num_batches`` batches through the model's data preprocessor and
    backbone in train mode, without gradients; nothing else changes).

    It runs after the weights are loaded (``before_train``). It is
    registered in decssl_mm's and, when mmdet is installed, in mmdet's
    ``HOOKS``, so an mmdet config (``default_scope='mmdet'``,
    ``custom_imports`` of ``decssl_mm``) uses it as::

        custom_hooks = [
            dict(type='BackboneBNRecalibrationHook', num_batches=20)
        ]

    Args:
        num_batches (int, optional): Training batches to average over.
            Defaults to 20; None uses one pass over the training loader.
    """

    priority = 'NORMAL'

    def __init__(self, num_batches: Optional[int] = 20) -> None:
        if num_batches is not None and int(num_batches) < 1:
            raise ValueError('BackboneBNRecalibrationHook: num_batches must '
                             f'be >= 1 or None, got {num_batches}')
        self.num_batches = None if num_batches is None else int(num_batches)

    def before_train(self, runner) -> None:
        from decssl_mm.evaluation.bn_recalibration import recalibrate_bn
        used = recalibrate_bn(runner.model, runner.train_dataloader,
                              self.num_batches)
        runner.logger.info(
            f'BackboneBNRecalibrationHook: backbone BatchNorm statistics '
            f're-estimated on {used} training batches')


try:  # mmdet is an optional ('downstream') dependency
    from mmdet.registry import HOOKS as MMDET_HOOKS
except ModuleNotFoundError as e:  # pragma: no cover
    if e.name != 'mmdet':
        raise
else:
    MMDET_HOOKS.register_module(module=BackboneBNRecalibrationHook)
