"""A fast, feature-based linear probe for sweeps.

Protocol (what :func:`linear_probe_evaluate` and ``tools/analysis/sweep.py``
report):

1. **Frozen features, once.** The backbone runs in eval mode (BatchNorm
   uses its running statistics) on a labelled train split and a labelled
   test split, each sample read once through a deterministic pipeline (no
   augmentation); the feature is the global-average-pooled last backbone
   output (:func:`decssl_mm.evaluation.knn.extract_features`).
2. **Standardisation.** Every feature dimension is centred and scaled by the
   mean and standard deviation of the *train* features (the test features
   get the same transform).
3. **Multinomial logistic regression** (one linear layer, softmax
   cross-entropy) trained with SGD + Nesterov momentum, a cosine learning
   rate over a fixed number of epochs, L2 weight decay on the weights, in
   minibatches (or full batch), seeded.
4. **Report the final epoch.** Top-1 (and top-5) test accuracy of the model
   after the last epoch; the test split never selects an epoch or a
   hyper-parameter.

This is a cheap stand-in for the full protocol, the mmpretrain linear
evaluation in ``configs/benchmarks/linear/`` (frozen backbone under a
``LinearClsHead`` trained for 100 epochs on augmented images, SGD lr 30,
last-epoch accuracy). Sweeps use the feature-based probe because it costs
one forward pass per image instead of 100, which is what a CPU budget
allows; its numbers are comparable across the runs of one sweep, not to
published linear-probe numbers.

For supervised checkpoints (Dec-SL: an mmpretrain ``ImageClassifier``),
:func:`classifier_accuracy` gives the accuracy of the model's own classifier
head (the "Dec-SL" number), while the linear probe on its frozen backbone is
the "Dec-SLRep" number.
"""
import logging
import math
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .knn import extract_features, unwrap_model

__all__ = [
    'standardize_features', 'train_linear_probe', 'linear_probe_evaluate',
    'classifier_accuracy', 'has_classifier_head'
]


def standardize_features(train_feats: torch.Tensor,
                         test_feats: torch.Tensor,
                         eps: float = 1e-6
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale features by the train features' statistics.

    Args:
        train_feats (Tensor): ``N x D`` train features.
        test_feats (Tensor): ``M x D`` test features.
        eps (float): Added to the standard deviation (constant dimensions
            stay finite). Defaults to 1e-6.

    Returns:
        tuple: The standardised ``(train, test)`` features (float32).
    """
    mean = train_feats.float().mean(0, keepdim=True)
    std = train_feats.float().std(0, unbiased=False, keepdim=True)
    return ((train_feats.float() - mean) / (std + eps),
            (test_feats.float() - mean) / (std + eps))


def _topk_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                   topk: Sequence[int]) -> Dict[str, float]:
    num_classes = logits.shape[1]
    order = logits.argsort(dim=1, descending=True, stable=True)
    hits = order == labels[:, None]
    return {
        f'top{t}': float(hits[:, :min(t, num_classes)].any(1).float().mean()
                         * 100)
        for t in topk
    }


def _check_inputs(train_feats: torch.Tensor, train_labels: torch.Tensor,
                  test_feats: torch.Tensor, test_labels: torch.Tensor
                  ) -> None:
    if train_feats.ndim != 2 or test_feats.ndim != 2:
        raise ValueError('features must be 2-D (samples x dims), got '
                         f'train {tuple(train_feats.shape)} and test '
                         f'{tuple(test_feats.shape)}')
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(f'train features have {train_feats.shape[1]} '
                         f'dims, test features {test_feats.shape[1]}')
    for name, feats, labels in (('train', train_feats, train_labels),
                                ('test', test_feats, test_labels)):
        if feats.shape[0] != labels.numel():
            raise ValueError(f'{feats.shape[0]} {name} features but '
                             f'{labels.numel()} {name} labels')
        if feats.shape[0] == 0:
            raise ValueError(f'the linear probe {name} set is empty')


def _nan_metrics(topk: Sequence[int]) -> Dict[str, float]:
    out = {f'top{t}': float('nan') for t in topk}
    out['train_top1'] = float('nan')
    return out


def train_linear_probe(train_feats: torch.Tensor,
                       train_labels: torch.Tensor,
                       test_feats: torch.Tensor,
                       test_labels: torch.Tensor,
                       num_classes: Optional[int] = None,
                       epochs: int = 100,
                       batch_size: Optional[int] = 256,
                       lr: float = 0.5,
                       momentum: float = 0.9,
                       weight_decay: float = 1e-4,
                       standardize: bool = True,
                       seed: int = 0,
                       topk: Sequence[int] = (1, 5),
                       device: Optional[str] = None) -> Dict[str, float]:
    """Train a multinomial logistic regression on features; test it once.

    Args:
        train_feats (Tensor): ``N x D`` frozen train features.
        train_labels (Tensor): ``N`` integer labels in ``[0, C)``.
        test_feats (Tensor): ``M x D`` frozen test features.
        test_labels (Tensor): ``M`` integer labels.
        num_classes (int, optional): ``C``; defaults to the largest label of
            either split + 1.
        epochs (int): Passes over the train features. Defaults to 100.
        batch_size (int, optional): Minibatch size; None or 0 trains full
            batch (one step per epoch). Defaults to 256.
        lr (float): Peak learning rate of the cosine schedule (per step,
            annealed to 0 over all steps). Defaults to 0.5 (features are
            standardised).
        momentum (float): Nesterov momentum. Defaults to 0.9.
        weight_decay (float): L2 penalty on the weights (not the bias).
            Defaults to 1e-4.
        standardize (bool): Standardise features with the train statistics
            first (:func:`standardize_features`). Defaults to True.
        seed (int): Seed of the initialisation and of the minibatch order.
            Defaults to 0.
        topk (Sequence[int]): Test accuracies to report. Defaults to (1, 5).
        device (str, optional): Where to train; defaults to the device of
            ``train_feats``.

    Returns:
        dict: ``{'top1': ..., 'top5': ..., 'train_top1': ...}`` in percent,
        of the model after the last epoch. NaN everywhere (and a warning)
        when a feature is not finite (a diverged backbone).

    Raises:
        ValueError: On empty or mismatching inputs or invalid settings,
            naming the argument.
    """
    _check_inputs(train_feats, train_labels, test_feats, test_labels)
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f'epochs must be a positive integer, got {epochs}')
    if batch_size is not None and batch_size < 0:
        raise ValueError(f'batch_size must be >= 0 or None, got {batch_size}')
    if lr <= 0 or weight_decay < 0 or not 0 <= momentum < 1:
        raise ValueError(f'need lr > 0, weight_decay >= 0 and momentum in '
                         f'[0, 1), got lr={lr}, weight_decay={weight_decay},'
                         f' momentum={momentum}')
    train_labels = train_labels.reshape(-1).long()
    test_labels = test_labels.reshape(-1).long()
    if not (torch.isfinite(train_feats).all()
            and torch.isfinite(test_feats).all()):
        from mmengine.logging import print_log
        print_log('linear probe: non-finite features; reporting NaN '
                  'accuracy', logger='current', level=logging.WARNING)
        return _nan_metrics(topk)
    if num_classes is None:
        num_classes = int(torch.cat([train_labels, test_labels]).max()) + 1
    device = torch.device(device) if device else train_feats.device
    x_train, x_test = train_feats.float(), test_feats.float()
    if standardize:
        x_train, x_test = standardize_features(x_train, x_test)
    x_train, x_test = x_train.to(device), x_test.to(device)
    y_train, y_test = train_labels.to(device), test_labels.to(device)

    gen = torch.Generator().manual_seed(int(seed))
    n, dim = x_train.shape
    layer = nn.Linear(dim, num_classes).to(device)
    with torch.no_grad():
        bound = 1.0 / math.sqrt(dim)
        layer.weight.copy_(
            torch.empty(num_classes, dim).uniform_(-bound, bound,
                                                   generator=gen))
        layer.bias.zero_()
    optimizer = torch.optim.SGD([
        dict(params=[layer.weight], weight_decay=weight_decay),
        dict(params=[layer.bias], weight_decay=0.)
    ], lr=lr, momentum=momentum, nesterov=momentum > 0)
    bs = n if not batch_size else min(int(batch_size), n)
    steps_per_epoch = -(-n // bs)
    total = int(epochs) * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    layer.train()
    for _ in range(int(epochs)):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            loss = F.cross_entropy(layer(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    layer.eval()
    with torch.no_grad():
        metrics = _topk_accuracy(layer(x_test), y_test, topk)
        metrics['train_top1'] = _topk_accuracy(layer(x_train), y_train,
                                               (1, ))['top1']
    return metrics


def linear_probe_evaluate(model: nn.Module,
                          train_loader: Iterable,
                          test_loader: Iterable,
                          feature: str = 'backbone',
                          **probe_kwargs) -> Dict[str, float]:
    """Extract frozen features of both splits once, then probe them.

    Args:
        model (nn.Module): An mmpretrain model (``backbone`` and
            ``data_preprocessor``; wrappers are removed).
        train_loader (Iterable): Labelled batches of the probe's train split
            (deterministic pipeline, e.g. from
            :func:`decssl_mm.evaluation.build_knn_dataloader`).
        test_loader (Iterable): Labelled batches of the test split.
        feature (str): ``'backbone'`` (default) or ``'neck'``.
        **probe_kwargs: Arguments of :func:`train_linear_probe`.

    Returns:
        dict: As :func:`train_linear_probe`.
    """
    train_feats, train_labels = extract_features(model, train_loader,
                                                 feature)
    test_feats, test_labels = extract_features(model, test_loader, feature)
    return train_linear_probe(train_feats, train_labels, test_feats,
                              test_labels, **probe_kwargs)


def has_classifier_head(model: nn.Module) -> bool:
    """Whether ``model`` is a classifier with its own head (e.g. Dec-SL).

    True for mmpretrain ``ImageClassifier``-like models: ``extract_feat``
    and a ``head`` module; False for self-supervised algorithms.
    """
    model = unwrap_model(model)
    return (callable(getattr(model, 'extract_feat', None))
            and isinstance(getattr(model, 'head', None), nn.Module)
            and type(model).__name__.endswith('Classifier'))


@torch.no_grad()
def classifier_predictions(model: nn.Module, dataloader: Iterable
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Scores of a classifier's own head and the labels, in eval mode.

    The batches are preprocessed by ``model.data_preprocessor`` (no
    augmentation); the scores are ``model.head(model.extract_feat(x))``.

    Args:
        model (nn.Module): An mmpretrain ``ImageClassifier`` (see
            :func:`has_classifier_head`).
        dataloader (Iterable): Labelled batches (``dict(inputs,
            data_samples)`` with ``gt_label``).

    Returns:
        tuple: ``(scores (N, C) float32 on the CPU, labels (N,) int64)``.

    Raises:
        TypeError: If the model has no classifier head.
        ValueError: If the dataloader is empty.
    """
    model = unwrap_model(model)
    if not has_classifier_head(model):
        raise TypeError(f'{type(model).__name__} has no classifier head '
                        '(expected an ImageClassifier with extract_feat and '
                        'head)')
    from .knn import _labels_of, iter_eval_batches
    scores, labels = [], []
    for inputs, samples in iter_eval_batches(model, dataloader):
        out = model.head(model.extract_feat(inputs))
        if isinstance(out, (list, tuple)):
            out = out[-1]
        scores.append(out.float().cpu())
        labels.append(_labels_of(samples))
    if not scores:
        raise ValueError('classifier_predictions: the dataloader is empty')
    return torch.cat(scores), torch.cat(labels)


def classifier_accuracy(model: nn.Module,
                        dataloader: Iterable,
                        topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Top-k accuracy (percent) of a classifier's own head, in eval mode.

    See :func:`classifier_predictions` for how the scores are computed.

    Args:
        model (nn.Module): An mmpretrain ``ImageClassifier`` (see
            :func:`has_classifier_head`).
        dataloader (Iterable): Labelled batches (``dict(inputs,
            data_samples)`` with ``gt_label``).
        topk (Sequence[int]): Accuracies to report. Defaults to (1, 5).

    Returns:
        dict: ``{'top1': ..., 'top5': ...}``.

    Raises:
        TypeError: If the model has no classifier head.
    """
    logits, labels = classifier_predictions(model, dataloader)
    if not torch.isfinite(logits).all():
        return {f'top{t}': float('nan') for t in topk}
    return _topk_accuracy(logits, labels, topk)
