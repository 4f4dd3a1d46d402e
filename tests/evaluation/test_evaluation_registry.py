"""Evaluations by registry: each kind runs by its name, ``<name>_bnre`` is
an option of any, kNN and the linear probe give the figures they gave
before the registry."""
import json
import math

import pytest
import torch
import torch.nn as nn

import decssl_mm  # noqa: F401
from decssl_mm.evaluation import (EvaluationNameError, build_evaluations,
                                  evaluation_names, extract_features,
                                  feature_metrics, knn_accuracy,
                                  train_linear_probe)
from decssl_mm.evaluation.bn_recalibration import recalibrated_copy
from decssl_mm.evaluation.evaluations import FrozenFeatures
from decssl_mm.evaluation.evaluations.nearest_mean import \
    nearest_mean_scores
from ._golden import GOLDEN, golden_figures


class _Preprocessor(nn.Module):

    def forward(self, data: dict, training: bool = False) -> dict:
        return dict(inputs=data['inputs'].float(),
                    data_samples=data['data_samples'])


class _TinyModel(nn.Module):
    """A conv + BatchNorm backbone and a preprocessor: what evaluations
    read of an mmpretrain model."""

    def __init__(self) -> None:
        super().__init__()
        self.data_preprocessor = _Preprocessor()
        self.backbone = nn.Sequential(nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6),
                                      nn.ReLU())


def _batches(n: int, seed: int, batch: int = 10) -> list:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randn(n, 1, 8, 8, generator=gen) + labels[:, None, None,
                                                             None] * 0.7
    return [dict(inputs=images[i:i + batch],
                  data_samples=[dict(gt_label=torch.tensor([int(y)]))
                                for y in labels[i:i + batch]])
            for i in range(0, n, batch)]


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    model = _TinyModel()
    with torch.no_grad():  # statistics that do not describe the features
        model.backbone[1].running_mean.fill_(0.5)
        model.backbone[1].running_var.fill_(3.0)
    return model, _batches(60, 1), _batches(30, 2)


def test_registered_kinds():
    names = evaluation_names()
    assert names[:3] == ['knn', 'linear', 'ncm']
    built = build_evaluations(['knn', 'linear_bnre', dict(type='ncm')])
    assert [e.name for e in built] == ['knn', 'linear_bnre', 'ncm']
    assert [e.bn_reestimate for e in built] == [False, True, False]
    (knn, ) = build_evaluations(['knn'], dict(knn=dict(k=7)))
    assert knn.settings() == dict(k=7, temperature=0.1)


def test_unknown_name_lists_the_registered_ones_and_the_source():
    with pytest.raises(EvaluationNameError) as err:
        build_evaluations(['knn', 'probe_bnre'], source='--eval')
    msg = str(err.value)
    assert msg.startswith("--eval: unknown evaluation 'probe_bnre'")
    assert 'registered: knn, linear, ncm' in msg
    with pytest.raises(ValueError, match='given twice'):
        build_evaluations(['knn', 'knn'])


def test_each_kind_runs_by_name(tiny):
    model, bank, query = tiny
    evals = ('knn', 'linear', 'ncm', 'knn_bnre', 'linear_bnre', 'ncm_bnre')
    metrics, info = feature_metrics(model, bank, query, evals,
                                    knn=dict(k=5), probe=dict(epochs=3))
    for name in evals:
        for key in ('top1', 'top5'):
            value = metrics[f'{name}_{key}']
            assert 0.0 <= value <= 100.0, (name, key)
    assert info['feat_dim'] == 6 and info['bnre_s'] >= 0
    assert {'feature_s', 'probe_s', 'bnre_feature_s', 'bnre_probe_s'} <= \
        set(info)


def test_knn_and_linear_equal_the_functions_they_wrap(tiny):
    """The registry route computes exactly what the functions compute on
    the frozen features (the route before the registry)."""
    model, bank, query = tiny
    metrics, _ = feature_metrics(
        model, bank, query, ('knn', 'linear', 'knn_bnre', 'linear_bnre'),
        knn=dict(k=5, temperature=0.2), probe=dict(epochs=4, lr=0.3),
        seed=3)
    for tag, net in (('', model), ('bnre_', recalibrated_copy(model, bank))):
        tx, ty = extract_features(net, bank)
        vx, vy = extract_features(net, query)
        knn = knn_accuracy(tx, ty, vx, vy, k=5, temperature=0.2,
                           num_classes=3)
        probe = train_linear_probe(tx, ty, vx, vy, num_classes=3, epochs=4,
                                   lr=0.3, seed=3, device=None)
        for key, value in knn.items():
            assert metrics[f'knn_{tag}{key}'] == value, (tag, key)
        for key, value in probe.items():
            assert metrics[f'linear_{tag}{key}'] == value, (tag, key)
    # BN re-estimation changes these features, not the model itself
    assert metrics['knn_top1'] != metrics['knn_bnre_top1'] or \
        metrics['linear_top1'] != metrics['linear_bnre_top1']
    assert model.backbone[1].running_var[0] == 3.0


def test_figures_equal_those_recorded_before_the_registry(fmnist_root,
                                                          tmp_path):
    """kNN and linear-probe figures (plain and ``_bnre``, trained model and
    both untrained references) of a tiny fixed model through
    ``evaluate_checkpoint``, against the figures the implementation before
    the registry gave for the same call (``golden_figures.json``)."""
    with open(GOLDEN) as f:
        before = json.load(f)
    assert golden_figures(fmnist_root, str(tmp_path)) == before


def test_nearest_class_mean_by_hand():
    bank = torch.tensor([[1., 0.], [3., 0.], [0., 2.], [0., 1.]])
    feats = FrozenFeatures(bank, torch.tensor([0, 0, 1, 1]),
                           torch.tensor([[1., .2], [.1, 1.], [1., 1.1]]),
                           torch.tensor([0, 1, 0]))
    scores = nearest_mean_scores(feats)
    expected = nn.functional.normalize(feats.test_x, dim=1)
    assert torch.allclose(scores, expected)  # class means: e_0 and e_1
    (ncm, ) = build_evaluations(['ncm'], dict(ncm=dict(topk=(1, ))))

    class _Ctx:
        def features(self, feature):
            return feats

    assert ncm.compute(_Ctx()) == {'top1': pytest.approx(200 / 3)}
    # a class missing from the bank is never predicted
    missing = FrozenFeatures(bank[:2], torch.tensor([0, 0]), feats.test_x,
                             torch.tensor([0, 1, 0]))
    assert nearest_mean_scores(missing)[:, 1].eq(-math.inf).all()
