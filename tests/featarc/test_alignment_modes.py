"""FeatARC's two alignment terms, pinned by hand on a tiny algorithm."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from decssl_mm.models import FeatARC
from decssl_mm.models.featarc import match_dim
from decssl_mm.models.projections import view_projections


class _TinyAlgo(BaseModel):
    """A BYOL-like algorithm: the online neck sees each view once."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(3, 4, bias=False)
        self.neck = nn.Linear(4, 2, bias=False)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return self.loss(inputs, data_samples)

    def loss(self, inputs, data_samples=None):
        p1 = self.neck(self.backbone(inputs[0]))
        p2 = self.neck(self.backbone(inputs[1]))
        return {'loss': (p1 - p2).pow(2).mean()}


def _batch():
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.randn(3, 3, generator=g), torch.randn(3, 3, generator=g)
    samples = [SimpleNamespace(sample_idx=i) for i in (12, 10, 11)]
    return [v1, v2], samples


def test_paper_mode_aligns_projector_outputs_to_the_targets():
    model = FeatARC(_TinyAlgo(), align_weight=0.5)
    feats = F.normalize(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]), dim=1)
    model.set_alignment_targets(torch.tensor([10, 11, 12]), feats)
    (v1, v2), samples = _batch()
    losses = model.loss([v1, v2], samples)
    # by hand: targets looked up by sample index (12, 10, 11)
    g = feats[[2, 0, 1]]
    algo = model.algorithm
    p1 = F.normalize(algo.neck(algo.backbone(v1)), dim=1)
    p2 = F.normalize(algo.neck(algo.backbone(v2)), dim=1)
    sim = 0.5 * ((g * p1).sum(1).mean() + (g * p2).sum(1).mean())
    assert torch.allclose(losses['loss_align'], -0.5 * sim)
    assert torch.allclose(losses['align_sim'], sim)
    # the term is differentiable and reaches the projector
    losses['loss_align'].backward()
    assert algo.neck.weight.grad is not None


def test_ours_mode_aligns_backbone_features_to_the_reference():
    model = FeatARC(_TinyAlgo(), align_weight=2.0)
    ref_w = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    model.set_reference({'backbone.weight': ref_w})
    (v1, v2), samples = _batch()
    losses = model.loss([v1, v2], samples)
    r1, r2 = F.normalize(v1 @ ref_w.t(), dim=1), F.normalize(v2 @ ref_w.t(),
                                                             dim=1)
    g = F.normalize(r1 + r2, dim=1)
    w = model.algorithm.backbone.weight
    z1, z2 = F.normalize(v1 @ w.t(), dim=1), F.normalize(v2 @ w.t(), dim=1)
    sim = 0.5 * ((g * z1).sum(1) + (g * z2).sum(1)).mean()
    assert torch.allclose(losses['loss_align'], -2.0 * sim)


def test_paper_mode_needs_targets_for_every_sample():
    model = FeatARC(_TinyAlgo())
    model.set_alignment_targets(torch.tensor([10, 11]),
                                F.normalize(torch.ones(2, 2), dim=1))
    (v1, v2), samples = _batch()
    with pytest.raises(KeyError, match='no target for samples'):
        model.loss([v1, v2], samples)


def test_target_dimension_mapping_is_fixed_and_unit_norm():
    g = F.normalize(torch.randn(5, 8), dim=1)
    a, b = match_dim(g, 3), match_dim(g, 3)
    assert a.shape == (5, 3) and torch.equal(a, b)
    assert torch.allclose(a.norm(dim=1), torch.ones(5))
    assert match_dim(g, 8) is g


def test_view_projections_of_one_call_layouts():
    n, d = 2, 3
    z = torch.arange(2 * n * d, dtype=torch.float).view(2 * n, d)
    inter = view_projections([z], n, 'SimCLR')
    assert torch.equal(inter[0], z[0::2]) and torch.equal(inter[1], z[1::2])
    major = view_projections([z], n, 'SwAV')
    assert torch.equal(major[0], z[:n]) and torch.equal(major[1], z[n:])
    one = view_projections([z[:n]], n, 'MoCo')
    assert len(one) == 1
