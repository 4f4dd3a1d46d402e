"""Run evaluations on one model: features shared, BatchNorm re-estimated
once for the ``_bnre`` ones."""
import time
from typing import Any, Dict, Optional, Sequence

import torch.nn as nn

from ..bn_recalibration import recalibrated_copy
from .base import BaseEvaluation, EvalContext

__all__ = ['run_evaluations']


def _run_group(ctx: EvalContext, evaluations: Sequence[BaseEvaluation]
               ) -> Dict[str, Dict[str, float]]:
    out = {}
    for evaluation in evaluations:
        ctx.features(evaluation.feature)  # shared, timed apart
        t0 = time.time()
        out[evaluation.name] = evaluation.compute(ctx)
        if evaluation.timing:
            ctx.info[f'{ctx.tag}{evaluation.timing}_s'] = round(
                time.time() - t0, 2)
    return out


def run_evaluations(model: nn.Module,
                    train_loader: Any,
                    val_loader: Any,
                    evaluations: Sequence[BaseEvaluation],
                    seed: int = 0,
                    device: Optional[str] = None,
                    info: Optional[dict] = None
                    ) -> Dict[str, Dict[str, float]]:
    """The figures of ``model`` by every evaluation.

    The plain evaluations share one :class:`EvalContext` (features of each
    split extracted once); those with ``bn_reestimate`` share another, on a
    copy of the model whose BatchNorm statistics were re-estimated on
    ``train_loader`` (the model itself is not changed).

    Args:
        model (nn.Module): The model.
        train_loader (Iterable): Labelled batches of the bank split.
        val_loader (Iterable): Labelled batches of the query split.
        evaluations (Sequence[BaseEvaluation]): Built evaluations.
        seed (int): Seed of the evaluations that draw. Defaults to 0.
        device (str, optional): Where the evaluations that train run.
        info (dict, optional): Receives timings (``feature_s``,
            ``bnre_s``, ``bnre_feature_s``, ``<timing>_s``) and
            ``feat_dim``.

    Returns:
        dict: ``{evaluation name: {metric: value}}``, plain ones first.
    """
    info = info if info is not None else {}
    plain = [e for e in evaluations if not e.bn_reestimate]
    bnre = [e for e in evaluations if e.bn_reestimate]
    out = {}
    if plain:
        out.update(_run_group(EvalContext(model, train_loader, val_loader,
                                          seed, device, info), plain))
    if bnre:
        t0 = time.time()
        twin = recalibrated_copy(model, train_loader)
        info['bnre_s'] = round(time.time() - t0, 2)
        out.update(_run_group(EvalContext(twin, train_loader, val_loader,
                                          seed, device, info, 'bnre_'),
                              bnre))
    return out
