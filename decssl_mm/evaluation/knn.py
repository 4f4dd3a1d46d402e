"""Weighted k-nearest-neighbour evaluation of frozen features.

The classifier of Wu et al. (instance discrimination), used by most
self-supervised learning papers as a cheap proxy of feature quality: every
test feature votes with its ``k`` most cosine-similar training features, a
neighbour of similarity ``s`` adding ``exp(s / T)`` to the score of its
class.
"""
import logging
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .features import backbone_output, pool_output, pooled_embedding

__all__ = [
    'knn_predict', 'knn_accuracy', 'extract_features', 'build_knn_dataloader',
    'knn_evaluate', 'unwrap_model'
]


def _chunks(n: int, size: int) -> Iterable[Tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


@torch.no_grad()
def knn_predict(train_feats: torch.Tensor,
                train_labels: torch.Tensor,
                test_feats: torch.Tensor,
                num_classes: Optional[int] = None,
                k: int = 200,
                temperature: float = 0.1,
                query_batch: int = 256,
                bank_batch: int = 65536) -> torch.Tensor:
    """Class scores of weighted kNN with cosine similarity.

    Memory stays bounded: queries are processed ``query_batch`` at a time
    against the feature bank in chunks of ``bank_batch``, keeping a running
    top-``k``; the largest temporary is ``query_batch x (bank_batch + k)``.

    Args:
        train_feats (Tensor): Bank features, ``N x D`` (any scale; they are
            L2-normalised here).
        train_labels (Tensor): Bank labels, ``N`` ints in
            ``[0, num_classes)``.
        test_feats (Tensor): Query features, ``M x D``.
        num_classes (int, optional): Number of classes; defaults to
            ``max(train_labels) + 1``.
        k (int): Number of neighbours (capped at ``N``). Defaults to 200.
        temperature (float): ``T`` of the ``exp(s / T)`` weights.
            Defaults to 0.1.
        query_batch (int): Queries per step. Defaults to 256.
        bank_batch (int): Bank features per step. Defaults to 65536.

    Returns:
        Tensor: Scores, ``M x num_classes`` (float32).
    """
    if train_feats.ndim != 2 or test_feats.ndim != 2:
        raise ValueError('features must be 2-D (samples x dims), got '
                         f'{tuple(train_feats.shape)} and '
                         f'{tuple(test_feats.shape)}')
    if train_feats.shape[0] != train_labels.numel():
        raise ValueError(f'{train_feats.shape[0]} bank features but '
                         f'{train_labels.numel()} labels')
    if train_feats.shape[0] == 0:
        raise ValueError('the kNN feature bank is empty')
    if k < 1 or temperature <= 0:
        raise ValueError(f'need k >= 1 and temperature > 0, got k={k}, '
                         f'temperature={temperature}')
    bank = F.normalize(train_feats.float(), dim=1)
    device = bank.device
    labels = train_labels.reshape(-1).long().to(device)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    k = min(int(k), bank.shape[0])
    scores = []
    for q0, q1 in _chunks(test_feats.shape[0], query_batch):
        query = F.normalize(test_feats[q0:q1].float().to(device), dim=1)
        best_sim = query.new_full((q1 - q0, 0), 0.)
        best_idx = labels.new_zeros((q1 - q0, 0))
        for b0, b1 in _chunks(bank.shape[0], bank_batch):
            sim = query @ bank[b0:b1].T
            sim = torch.cat([best_sim, sim], dim=1)
            idx = torch.cat(
                [best_idx,
                 torch.arange(b0, b1, device=device).expand(q1 - q0, -1)],
                dim=1)
            best_sim, pos = sim.topk(min(k, sim.shape[1]), dim=1)
            best_idx = idx.gather(1, pos)
        weights = (best_sim / temperature).exp()
        votes = torch.zeros(q1 - q0, num_classes, device=device)
        votes.scatter_add_(1, labels[best_idx], weights)
        scores.append(votes)
    if not scores:
        return torch.zeros(0, num_classes, device=device)
    return torch.cat(scores)


def knn_accuracy(train_feats: torch.Tensor,
                 train_labels: torch.Tensor,
                 test_feats: torch.Tensor,
                 test_labels: torch.Tensor,
                 k: int = 200,
                 temperature: float = 0.1,
                 topk: Sequence[int] = (1, 5),
                 num_classes: Optional[int] = None,
                 **kwargs) -> Dict[str, float]:
    """Top-k accuracy (percent) of weighted kNN, see :func:`knn_predict`.

    Args:
        train_feats, train_labels, test_feats: As for :func:`knn_predict`.
        test_labels (Tensor): Query labels, ``M`` ints.
        k (int): Number of neighbours. Defaults to 200.
        temperature (float): Weight temperature. Defaults to 0.1.
        topk (Sequence[int]): Which top-k accuracies to report; ``k`` larger
            than the number of classes counts as the number of classes.
            Defaults to (1, 5).
        num_classes (int, optional): Defaults to the largest label + 1.
        **kwargs: ``query_batch``/``bank_batch`` of :func:`knn_predict`.

    Returns:
        dict: ``{'top1': float, 'top5': float}`` (per ``topk``).
    """
    test_labels = test_labels.reshape(-1).long()
    if test_feats.shape[0] != test_labels.numel():
        raise ValueError(f'{test_feats.shape[0]} query features but '
                         f'{test_labels.numel()} labels')
    if test_labels.numel() == 0:
        raise ValueError('the kNN query set is empty')
    if num_classes is None:
        num_classes = int(torch.cat([train_labels.reshape(-1).long(),
                                     test_labels]).max()) + 1
    scores = knn_predict(train_feats, train_labels, test_feats, num_classes,
                         k, temperature, **kwargs)
    # Stable ranking: ties go to the smaller class index.
    order = scores.argsort(dim=1, descending=True, stable=True)
    hits = order == test_labels.to(order.device)[:, None]
    return {
        f'top{t}': float(hits[:, :min(t, num_classes)].any(1).float().mean()
                         * 100)
        for t in topk
    }


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP/federated wrappers (``.module`` chain)."""
    while hasattr(model, 'module') and isinstance(model.module, nn.Module):
        model = model.module
    return model


def _labels_of(data_samples) -> torch.Tensor:
    labels = []
    for i, ds in enumerate(data_samples or ()):
        label = getattr(ds, 'gt_label', None)
        if label is None and isinstance(ds, dict):
            label = ds.get('gt_label')
        if label is None:
            raise ValueError(f'kNN sample {i} of a batch has no gt_label; '
                             'the kNN datasets must be labelled')
        labels.append(torch.as_tensor(label).reshape(-1)[:1])
    if not labels:
        raise ValueError('kNN batch without data_samples (labels); pack the '
                         'samples with PackInputs')
    return torch.cat(labels).long()


def iter_eval_batches(model: nn.Module, dataloader: Iterable
                      ) -> Iterator[Tuple[torch.Tensor, Any]]:
    """Labelled batches preprocessed for an eval-mode forward pass.

    The model is put in eval mode while the batches are consumed and its
    training mode is restored afterwards; each batch goes through
    ``model.data_preprocessor`` (its normalisation, no augmentation).

    Args:
        model (nn.Module): An unwrapped mmpretrain model.
        dataloader (Iterable): Batches ``dict(inputs, data_samples)``.

    Yields:
        tuple: ``(preprocessed inputs, data_samples)``.
    """
    was_training = model.training
    model.eval()
    try:
        for data in dataloader:
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = torch.stack(list(inputs))
            samples = data.get('data_samples')
            batch = model.data_preprocessor(
                dict(inputs=inputs, data_samples=samples), False)
            yield batch['inputs'], samples
    finally:
        model.train(was_training)


@torch.no_grad()
def extract_features(model: nn.Module,
                     dataloader: Iterable,
                     feature: str = 'backbone'
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a labelled dataset, in eval mode.

    The batches are preprocessed by ``model.data_preprocessor`` (the
    normalisation of the model, no augmentation); the feature is the
    global-average-pooled last output of ``model.backbone``
    (``feature='backbone'``) or the output of ``model.neck`` on it
    (``feature='neck'``). The training mode is restored afterwards.

    Args:
        model (nn.Module): An mmpretrain model (wrappers are removed).
        dataloader (Iterable): Batches ``dict(inputs, data_samples)`` with
            ``gt_label`` in every data sample; inputs of one size.
        feature (str): ``'backbone'`` or ``'neck'``.

    Returns:
        tuple: ``(features N x D float32 on CPU, labels N int64)``.
    """
    if feature not in ('backbone', 'neck'):
        raise ValueError(f"feature must be 'backbone' or 'neck', got "
                         f'{feature!r}')
    model = unwrap_model(model)
    feats, labels = [], []
    for inputs, samples in iter_eval_batches(model, dataloader):
        if feature == 'neck':
            out = backbone_output(model.backbone, inputs)
            feat = pool_output(model.neck(
                out if isinstance(out, (tuple, list)) else (out, )))
        else:
            feat = pooled_embedding(model.backbone, inputs, normalize=False)
        feats.append(feat.float().cpu())
        labels.append(_labels_of(samples))
    if not feats:
        raise ValueError('kNN dataloader is empty')
    return torch.cat(feats), torch.cat(labels)


def build_knn_dataloader(cfg: dict) -> DataLoader:
    """A sequential, non-distributed dataloader from a dataloader config.

    Only ``dataset``, ``batch_size``, ``num_workers`` and ``collate_fn`` of
    ``cfg`` are used; ``sampler`` is ignored (every sample is read once, in
    order, on the calling process).

    Args:
        cfg (dict): mmengine dataloader config.
    """
    from mmengine.registry import FUNCTIONS

    from decssl_mm.registry import DATASETS
    if not isinstance(cfg, dict) or 'dataset' not in cfg:
        raise ValueError(f'kNN dataloader config needs a dataset: {cfg!r}')
    dataset = cfg['dataset']
    if isinstance(dataset, dict):
        dataset = DATASETS.build(dataset)
    collate_cfg = dict(cfg.get('collate_fn') or dict(type='pseudo_collate'))
    collate = FUNCTIONS.get(collate_cfg.pop('type'))
    if collate_cfg:
        from functools import partial
        collate = partial(collate, **collate_cfg)
    return DataLoader(
        dataset,
        batch_size=cfg.get('batch_size', 64),
        num_workers=cfg.get('num_workers', 0),
        shuffle=False,
        drop_last=False,
        collate_fn=collate)


def knn_evaluate(model: nn.Module,
                 train_loader: Iterable,
                 val_loader: Iterable,
                 k: int = 200,
                 temperature: float = 0.1,
                 feature: str = 'backbone',
                 topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Extract features of both sets and return kNN top-k accuracies.

    Non-finite features (a diverged model) give NaN accuracies and a
    warning instead of a meaningless number.
    """
    train_feats, train_labels = extract_features(model, train_loader,
                                                 feature)
    val_feats, val_labels = extract_features(model, val_loader, feature)
    bad = int((~torch.isfinite(train_feats).all(1)).sum() +
              (~torch.isfinite(val_feats).all(1)).sum())
    if bad:  # a diverged model: report NaN rather than a random accuracy
        from mmengine.logging import print_log
        print_log(f'kNN: {bad} samples have non-finite features; reporting '
                  'NaN accuracy', logger='current', level=logging.WARNING)
        return {f'top{t}': float('nan') for t in topk}
    return knn_accuracy(train_feats, train_labels, val_feats, val_labels, k,
                        temperature, topk)
