"""Evaluate a checkpoint: kNN, linear probe, a classifier's own head, each
beside its untrained references."""
import math
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

__all__ = ['DEFAULT_EVALS', 'EVALS', 'evaluate_checkpoint',
           'feature_metrics']

# ``<kind>_bnre``: the same evaluation after the frozen backbone's
# BatchNorm statistics are re-estimated on the bank split
# (:func:`decssl_mm.evaluation.bn_recalibration.recalibrated_copy`), as the
# paper's code does while its probe trains; reported beside the plain one.
EVALS = ('knn', 'linear', 'knn_bnre', 'linear_bnre')
DEFAULT_EVALS = ('knn', 'linear')


def _num_classes(*labels: torch.Tensor) -> int:
    return int(torch.cat([lab.reshape(-1) for lab in labels]).max()) + 1


def feature_metrics(model: nn.Module,
                    train_loader: Any,
                    val_loader: Any,
                    evals: Sequence[str] = DEFAULT_EVALS,
                    knn: Optional[dict] = None,
                    probe: Optional[dict] = None,
                    seed: int = 0,
                    device: Optional[str] = None,
                    head: bool = True) -> Tuple[Dict[str, float], dict]:
    """kNN / linear-probe metrics of a model's frozen features.

    Features of both splits are extracted once
    (:func:`decssl_mm.evaluation.knn.extract_features`) and shared by both
    evaluations; with ``head``, a classifier also gets its own head's
    accuracy (``cls_top1``).

    Args:
        model (nn.Module): The model (``backbone``, ``data_preprocessor``).
        train_loader (Iterable): Labelled batches of the bank split.
        val_loader (Iterable): Labelled batches of the query split.
        evals (Sequence[str]): Subset of :data:`EVALS`; ``<kind>_bnre``
            repeats ``<kind>`` after re-estimating the BatchNorm statistics
            of a copy of the model on ``train_loader`` (metrics
            ``<kind>_bnre_top1``, ...). Defaults to ``('knn', 'linear')``.
        knn (dict, optional): ``k`` and ``temperature`` of
            :func:`knn_accuracy`.
        probe (dict, optional): Keyword arguments of
            :func:`train_linear_probe` (``seed`` and ``device`` are set
            here).
        seed (int): Seed of the probe. Defaults to 0.
        device (str, optional): Where the probe trains.
        head (bool): Evaluate a classifier's own head too (not when only its
            backbone was loaded). Defaults to True.

    Returns:
        tuple: ``(metrics, info)``: metrics in percent (NaN when the
        features are not finite); info with ``feat_dim`` and timings.
    """
    from .linear_probe import classifier_accuracy, has_classifier_head
    bad = [e for e in evals if e not in EVALS]
    if bad:
        raise ValueError(f'unknown evaluation {bad[0]!r}; choose from '
                         f'{", ".join(EVALS)}')
    metrics: Dict[str, float] = {}
    info: dict = {}
    if head and has_classifier_head(model):
        metrics.update({f'cls_{k}': v for k, v in
                        classifier_accuracy(model, val_loader).items()})
    plain = [e for e in evals if not e.endswith('_bnre')]
    metrics.update(_frozen_feature_metrics(
        model, train_loader, val_loader, plain, knn, probe, seed, device,
        info, ''))
    bnre = [e[:-len('_bnre')] for e in evals if e.endswith('_bnre')]
    if bnre:
        from .bn_recalibration import recalibrated_copy
        t0 = time.time()
        twin = recalibrated_copy(model, train_loader)
        info['bnre_s'] = round(time.time() - t0, 2)
        metrics.update(_frozen_feature_metrics(
            twin, train_loader, val_loader, bnre, knn, probe, seed, device,
            info, 'bnre_'))
    return metrics, info


def _frozen_feature_metrics(model: nn.Module, train_loader: Any,
                            val_loader: Any, evals: Sequence[str],
                            knn: Optional[dict], probe: Optional[dict],
                            seed: int, device: Optional[str], info: dict,
                            tag: str) -> Dict[str, float]:
    """kNN / linear-probe metrics named ``<kind>_<tag><metric>`` of one
    model's frozen features (``info`` gains timings and ``feat_dim``)."""
    from .knn import extract_features, knn_accuracy
    from .linear_probe import train_linear_probe
    metrics: Dict[str, float] = {}
    if not evals:
        return metrics
    t0 = time.time()
    train_x, train_y = extract_features(model, train_loader)
    test_x, test_y = extract_features(model, val_loader)
    info[f'{tag}feature_s'] = round(time.time() - t0, 2)
    info['feat_dim'] = int(train_x.shape[1])
    finite = bool(torch.isfinite(train_x).all()
                  and torch.isfinite(test_x).all())
    num_classes = _num_classes(train_y, test_y)
    if 'knn' in evals:
        res = knn_accuracy(train_x, train_y, test_x, test_y,
                           num_classes=num_classes, **(knn or {})) \
            if finite else {'top1': math.nan, 'top5': math.nan}
        metrics.update({f'knn_{tag}{k}': v for k, v in res.items()})
    if 'linear' in evals:
        t0 = time.time()
        kwargs = dict(probe or {})
        kwargs.update(seed=seed, device=device)
        res = train_linear_probe(train_x, train_y, test_x, test_y,
                                 num_classes=num_classes, **kwargs)
        info[f'{tag}probe_s'] = round(time.time() - t0, 2)
        metrics.update({f'linear_{tag}{k}': v for k, v in res.items()})
    return metrics


def _rounded(metrics: Dict[str, float]) -> Dict[str, Optional[float]]:
    return {k: round(float(v), 4) if math.isfinite(v) else None
            for k, v in metrics.items()}


def evaluate_checkpoint(cfg: Any,
                        checkpoint: Optional[str] = None,
                        cluster: Optional[int] = None,
                        evals: Sequence[str] = DEFAULT_EVALS,
                        knn: Optional[dict] = None,
                        probe: Optional[dict] = None,
                        loaders: Optional[Tuple[dict, dict]] = None,
                        references: bool = True,
                        seed: int = 0,
                        device: str = 'cpu',
                        cache: Optional[dict] = None) -> dict:
    """Evaluate a checkpoint and its untrained references.

    The model is loaded by :func:`load_eval_model` (any checkpoint kind);
    with ``checkpoint=None`` the model's own initialisation is evaluated
    (``seed``). The metrics (percent, rounded, None when not finite):
    ``knn_top1``/``knn_top5`` (weighted kNN), ``linear_top1``/
    ``linear_top5``/``linear_train_top1`` (feature-based linear probe,
    :mod:`decssl_mm.evaluation.linear_probe`), and for a classifier loaded
    whole ``cls_top1``/``cls_top5`` (its own head). With ``references``,
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
        evals (Sequence[str]): Subset of :data:`EVALS` (see
            :func:`feature_metrics`); empty: nothing is computed.
        knn (dict, optional): ``k``, ``temperature`` (defaults 200, 0.1).
        probe (dict, optional): Keyword arguments of
            :func:`train_linear_probe` (epochs, lr, batch_size,
            weight_decay).
        loaders (tuple, optional): ``(bank, query)`` dataloader configs.
        references (bool): Also compute the untrained references. Defaults
            to True.
        seed (int): Seed of the references (and of the untrained model
            when ``checkpoint`` is None) and of the probe. Defaults to 0.
        device (str): ``'cpu'``, ``'cuda'``, ... Defaults to ``'cpu'``.
        cache (dict, optional): Reference metrics by
            :func:`reference_key`, read and filled (a sweep shares one
            across its runs: the references do not change).

    Returns:
        dict: ``metrics`` (trained), ``references`` (``{'untrained_init':
        metrics, 'untrained_default': metrics}``, empty without
        ``references``) and ``info``: the sizes of the splits
        (``num_train``, ``num_test``), ``feat_dim``, timings and the
        checkpoint facts of :func:`load_eval_model`.
    """
    from .knn import build_knn_dataloader
    from .loaders import find_eval_loaders
    from .model_loading import eval_model_cfg, load_eval_model
    from .untrained import (UNTRAINED_INITS, build_untrained_model,
                            reference_key, untrained_metrics)
    evals = tuple(evals)
    metrics: Dict[str, Any] = {}
    info: dict = {}
    if not evals:
        return dict(metrics=metrics, references={}, info=info)
    knn = dict(dict(k=200, temperature=0.1), **(knn or {}))
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
        return feature_metrics(m, train_loader, val_loader, evals, knn,
                               probe, seed, device, head)

    trained, extra = run(model)
    info.update(extra)
    metrics.update(_rounded(trained))
    if not references:
        return dict(metrics=metrics, references={}, info=info)
    key = reference_key(eval_model_cfg(cfg), seed, evals, knn, probe,
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
