"""The feature-based linear probe of decssl_mm.evaluation.linear_probe."""
import math

import pytest
import torch

from decssl_mm.evaluation import train_linear_probe
from decssl_mm.evaluation.linear_probe import standardize_features


def _blobs(n_per_class: int, num_classes: int = 4, dim: int = 16,
           noise_seed: int = 0):
    """Linearly separable Gaussian blobs (fixed centers; ``noise_seed``
    draws the samples), with a large offset and scale that the
    standardisation must cope with."""
    centers = torch.randn(num_classes, dim,
                          generator=torch.Generator().manual_seed(123)) * 4
    g = torch.Generator().manual_seed(noise_seed)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centers[labels] + torch.randn(len(labels), dim, generator=g)
    return feats * 50 + 1000, labels


def test_probe_beats_chance_on_separable_features():
    train_x, train_y = _blobs(60, noise_seed=0)
    test_x, test_y = _blobs(30, noise_seed=1)
    res = train_linear_probe(train_x, train_y, test_x, test_y, epochs=30,
                             batch_size=64)
    assert res['top1'] > 90  # chance is 25 %
    assert res['train_top1'] > 90
    assert set(res) == {'top1', 'top5', 'train_top1'}
    assert res['top5'] == 100.0  # 4 classes: top-5 covers all


def test_probe_is_deterministic_and_full_batch_works():
    x, y = _blobs(20)
    a = train_linear_probe(x, y, x, y, epochs=5, seed=3)
    b = train_linear_probe(x, y, x, y, epochs=5, seed=3)
    assert a == b
    full = train_linear_probe(x, y, x, y, epochs=50, batch_size=None)
    assert full['top1'] > 90


def test_probe_reports_nan_for_diverged_features():
    x, y = _blobs(5)
    x[0, 0] = float('nan')
    res = train_linear_probe(x, y, x.clone(), y, epochs=1)
    assert all(math.isnan(v) for v in res.values())


def test_probe_errors_name_the_argument():
    x, y = _blobs(5)
    with pytest.raises(ValueError, match='labels'):
        train_linear_probe(x, y[:-1], x, y)
    with pytest.raises(ValueError, match='epochs'):
        train_linear_probe(x, y, x, y, epochs=0)
    with pytest.raises(ValueError, match='dims'):
        train_linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match='empty'):
        train_linear_probe(x[:0], y[:0], x, y)


def test_standardize_uses_train_statistics():
    train = torch.tensor([[0., 5.], [2., 5.]])
    test = torch.tensor([[4., 5.]])
    a, b = standardize_features(train, test)
    assert torch.allclose(a[:, 0], torch.tensor([-1., 1.]), atol=1e-4)
    assert torch.allclose(b[0, 0], torch.tensor(3.), atol=1e-4)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
