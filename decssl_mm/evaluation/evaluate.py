"""Evaluate a checkpoint by registered evaluations (kNN, linear probe,
...) and a classifier's own head, each beside its untrained references."""
import math
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import torch.nn as nn

from .evaluations import (BaseEvaluation, build_evaluations,
                          run_evaluations)

__all__ = ['DEFAULT_EVALS', 'evaluate_checkpoint', 'evaluation_options',
           'feature_metrics']

DEFAULT_EVALS = ('knn', 'linear')


def evaluation_options(knn: Optional[dict] = None,
                       probe: Optional[dict] = None,
                       options: Optional[Dict[str, dict]] = None
                       ) -> Dict[str, dict]:
    """Settings by evaluation name: ``options`` with ``knn`` as the
    settings of ``'knn'`` and ``probe`` as those of ``'linear'`` on top."""
    out = {name: dict(value or {}) for name, value in (options or {}).items()}
    for name, value in (('knn', knn), ('linear', probe)):
        if value:
            out[name] = dict(out.get(name) or {}, **value)
    return out


def feature_metrics(model: nn.Module,
                    train_loader: Any,
                    val_loader: Any,
                    evals: Sequence[Any] = DEFAULT_EVALS,
                    knn: Optional[dict] = None,
                    probe: Optional[dict] = None,
                    seed: int = 0,
                    device: Optional[str] = None,
                    head: bool = True,
                    options: Optional[Dict[str, dict]] = None
                    ) -> Tuple[Dict[str, float], dict]:
    """Metrics of a model by registered evaluations.

    Every evaluation is built from ``EVALUATIONS`` by name
    (:func:`~decssl_mm.evaluation.evaluations.build_evaluations`) and run
    by :func:`~decssl_mm.evaluation.evaluations.run_evaluations` (frozen
    features of both splits extracted once and shared); metric ``m`` of
    evaluation ``e`` is ``<e>_<m>`` (``knn_top1``, ``linear_bnre_top1``).
    With ``head``, a classifier also gets its own head's accuracy
    (``cls_top1``).

    Args:
        model (nn.Module): The model (``backbone``, ``data_preprocessor``).
        train_loader (Iterable): Labelled batches of the bank split.
        val_loader (Iterable): Labelled batches of the query split.
        evals (Sequence): Registered names (``'knn'``, ``'linear'``,
            ``'ncm'``, ... each also as ``<name>_bnre``: after
            re-estimating the BatchNorm statistics of a copy of the model
            on ``train_loader``), dicts ``dict(type=name, **settings)`` or
            built evaluations. Defaults to ``('knn', 'linear')``.
        knn (dict, optional): Settings of ``'knn'`` (``k``,
            ``temperature``).
        probe (dict, optional): Settings of ``'linear'`` (arguments of
            :func:`train_linear_probe` but ``seed`` and ``device``).
        seed (int): Seed of the evaluations that draw (the probe).
            Defaults to 0.
        device (str, optional): Where the evaluations that train run.
        head (bool): Evaluate a classifier's own head too (not when only its
            backbone was loaded). Defaults to True.
        options (dict, optional): Settings of any evaluation by name.

    Returns:
        tuple: ``(metrics, info)``: metrics in percent (NaN when the
        features are not finite); info with ``feat_dim`` and timings.

    Raises:
        EvaluationNameError: On an unregistered name (before any work).
    """
    from .linear_probe import classifier_accuracy, has_classifier_head
    evaluations = build_evaluations(
        evals, evaluation_options(knn, probe, options), 'evals')
    metrics: Dict[str, float] = {}
    info: dict = {}
    if head and has_classifier_head(model):
        metrics.update({f'cls_{k}': v for k, v in
                        classifier_accuracy(model, val_loader).items()})
    figures = run_evaluations(model, train_loader, val_loader, evaluations,
                              seed, device, info)
    for name, values in figures.items():
        metrics.update({f'{name}_{k}': v for k, v in values.items()})
    return metrics, info


def _settings(evaluations: Sequence[BaseEvaluation]) -> list:
    return [(e.name, e.feature, e.settings()) for e in evaluations]


def _rounded(metrics: Dict[str, float]) -> Dict[str, Optional[float]]:
    return {k: round(float(v), 4) if math.isfinite(v) else None
            for k, v in metrics.items()}


def evaluate_checkpoint(cfg: Any,
                        checkpoint: Optional[str] = None,
                        cluster: Optional[int] = None,
                        evals: Sequence[Any] = DEFAULT_EVALS,
                        knn: Optional[dict] = None,
                        probe: Optional[dict] = None,
                        loaders: Optional[Tuple[dict, dict]] = None,
                        references: bool = True,
                        seed: int = 0,
                        device: str = 'cpu',
                        cache: Optional[dict] = None,
                        options: Optional[Dict[str, dict]] = None) -> dict:
    """Evaluate a checkpoint and its untrained references.

    The model is loaded by :func:`load_eval_model` (any checkpoint kind);
    with ``checkpoint=None`` the model's own initialisation is evaluated
    (``seed``). The metrics (percent, rounded, None when not finite) are
    those of the registered evaluations ``evals`` (:func:`feature_metrics`),
    e.g. ``knn_top1``/``knn_top5`` (weighted kNN), ``linear_top1``/
    ``linear_top5``/``linear_train_top1`` (feature-based linear probe), and
    for a classifier loaded whole ``cls_top1``/``cls_top5`` (its own
    head). With ``references``,
    the same metrics of the network untrained, in two forms
    (:mod:`decssl_mm.evaluation.untrained`): ``untrained_init`` (the model's
    own initialisation) and ``untrained_default`` (PyTorch's default),
    computed with ``seed``, the same settings and the same data.

    Args:
        cfg (Config): The config: its model and, unless ``loaders`` is given,
            its evaluation loaders (:func:`find_eval_loaders`).
        checkpoint (str, optional): Any checkpoint (see
            :func:`load_eval_model`); None: the untrained model.
        cluster (int, optional): Cluster model of a clustered checkpoint.
        evals (Sequence): Registered evaluation names (or dicts, see
            :func:`feature_metrics`); empty: nothing is computed.
        knn (dict, optional): Settings of ``'knn'``: ``k``,
            ``temperature`` (defaults 200, 0.1).
        probe (dict, optional): Settings of ``'linear'``: keyword
            arguments of :func:`train_linear_probe` (epochs, lr,
            batch_size, weight_decay).
        loaders (tuple, optional): ``(bank, query)`` dataloader configs.
        references (bool): Also compute the untrained references. Defaults
            to True.
        seed (int): Seed of the references (and of the untrained model
            when ``checkpoint`` is None) and of the probe. Defaults to 0.
        device (str): ``'cpu'``, ``'cuda'``, ... Defaults to ``'cpu'``.
        cache (dict, optional): Reference metrics by
            :func:`reference_key`, read and filled (a sweep shares one
            across its runs: the references do not change).
        options (dict, optional): Settings of any evaluation by name.

    Returns:
        dict: ``metrics`` (trained), ``references`` (``{'untrained_init':
        metrics, 'untrained_default': metrics}``, empty without
        ``references``) and ``info``: the sizes of the splits
        (``num_train``, ``num_test``), ``feat_dim``, timings and the
        checkpoint facts of :func:`load_eval_model`.

    Raises:
        EvaluationNameError: On an unregistered name, before any work.
    """
    from .knn import build_knn_dataloader
    from .loaders import find_eval_loaders
    from .model_loading import eval_model_cfg, load_eval_model
    from .untrained import (UNTRAINED_INITS, build_untrained_model,
                            reference_key, untrained_metrics)
    metrics: Dict[str, Any] = {}
    info: dict = {}
    if not evals:
        return dict(metrics=metrics, references={}, info=info)
    evaluations = build_evaluations(
        evals, evaluation_options(knn, probe, options), 'evals')
    train_cfg, val_cfg = loaders or find_eval_loaders(cfg)
    if checkpoint is None:
        model = build_untrained_model(cfg, 'model', seed, device)
        info.update(checkpoint=None, loaded='untrained_init')
    else:
        model, ckpt_info = load_eval_model(cfg, checkpoint, cluster, device)
        info.update(ckpt_info)
    # a classifier's own head counts only when it was loaded
    head = info['loaded'] != 'backbone'
    train_loader = build_knn_dataloader(train_cfg)
    val_loader = build_knn_dataloader(val_cfg)
    info.update(num_train=len(train_loader.dataset),
                num_test=len(val_loader.dataset))

    def run(m: nn.Module) -> Tuple[Dict[str, float], dict]:
        return feature_metrics(m, train_loader, val_loader, evaluations,
                               seed=seed, device=device, head=head)

    trained, extra = run(model)
    info.update(extra)
    metrics.update(_rounded(trained))
    if not references:
        return dict(metrics=metrics, references={}, info=info)
    key = reference_key(eval_model_cfg(cfg), seed, _settings(evaluations),
                        train_cfg, val_cfg, head)
    refs = (cache or {}).get(key)
    t0 = time.time()
    if refs is None:
        refs = {name: _rounded(vals) for name, vals in untrained_metrics(
            cfg, lambda m: run(m)[0], seed, device).items()}
        if cache is not None:
            cache[key] = refs
    info['reference_s'] = round(time.time() - t0, 2)
    return dict(metrics=metrics,
                references={name: dict(refs[name])
                            for name in UNTRAINED_INITS},
                info=info)
