"""The FeatARC model: same state dict as the algorithm, alignment term."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from _helpers.baseline_configs import _shrink_model
from _helpers.configs import ROOT

import decssl_mm  # noqa: F401
import decssl_mm.models.featarc  # noqa: F401
from decssl_mm.models.featarc import pooled_embedding
from decssl_mm.registry import MODELS

ALGORITHMS = ['simclr', 'mocov2', 'byol']


def _algo_cfg(name: str):
    cfg = Config.fromfile(f'{ROOT}/configs/_base_/models/{name}_r18-cifar.py')
    _shrink_model(cfg.model)
    if name == 'mocov2':
        cfg.model.queue_len = 16
    return cfg.model.to_dict()


def _build_pair(name: str, align_weight: float):
    init_default_scope('decssl_mm')
    torch.manual_seed(0)
    plain = MODELS.build(_algo_cfg(name))
    plain.init_weights()
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='FeatARC', algorithm=_algo_cfg(name),
             align_weight=align_weight))
    model.init_weights()
    return plain, model


def _views(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, 32, 32, generator=g) for _ in range(2)]


@pytest.mark.parametrize('name', ALGORITHMS)
def test_state_dict_is_the_algorithms(name):
    plain, model = _build_pair(name, 1.0)
    a, b = plain.state_dict(), model.state_dict()
    assert list(a) == list(b)  # same keys, same order: exports as usual
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the reference backbone is neither saved nor optimised
    assert not any(k.startswith('_reference') for k in b)
    assert len(list(model.parameters())) == len(list(plain.parameters()))


@pytest.mark.parametrize('name', ALGORITHMS)
def test_zero_weight_trains_exactly_as_the_algorithm(name):
    plain, model = _build_pair(name, 0.0)
    model.set_reference_from_backbone()
    views = _views()
    plain.train()
    model.train()
    lp = sum(v for k, v in plain.loss(views, None).items() if 'loss' in k)
    losses = model.loss(views, None)
    assert 'loss_align' not in losses
    lm = sum(v for k, v in losses.items() if 'loss' in k)
    lp.backward()
    lm.backward()
    assert torch.allclose(lp, lm)
    pp = dict(plain.named_parameters())
    for k, p in model.named_parameters():
        if pp[k].grad is None:
            assert p.grad is None, k
            continue
        assert torch.allclose(p.grad, pp[k].grad, rtol=1e-4, atol=1e-5), k


def test_alignment_gradient_is_zero_at_zero_weight():
    _, model = _build_pair('simclr', 1.0)
    model.set_reference({'backbone.' + k: v + 0.01 * torch.randn_like(v)
                         if v.is_floating_point() else v
                         for k, v in model.backbone.state_dict().items()})
    term = 0.0 * -model.alignment(*_views())
    term.backward()
    grads = [p.grad for p in model.backbone.parameters()
             if p.grad is not None]
    assert grads and all(torch.count_nonzero(g) == 0 for g in grads)


def test_positive_weight_raises_alignment():
    """Steps on the alignment loss alone raise <g, z>, and only it moves."""
    init_default_scope('decssl_mm')
    torch.manual_seed(0)
    model = MODELS.build(dict(type='FeatARC', algorithm=_algo_cfg('simclr'),
                              align_weight=1.0))
    model.init_weights()
    model.train()
    # the reference: a different (perturbed) backbone
    ref = {'backbone.' + k: (v + 0.3 * torch.randn_like(v)
                             if v.is_floating_point() else v)
           for k, v in model.backbone.state_dict().items()}
    model.set_reference(ref)
    ref_before = copy.deepcopy(model.reference.state_dict())
    views = _views(16)
    opt = torch.optim.SGD(model.backbone.parameters(), lr=0.2)
    sims = []
    for _ in range(10):
        opt.zero_grad()
        sim = model.alignment(*views)
        (-model.align_weight * sim).backward()
        opt.step()
        sims.append(float(sim))
    with torch.no_grad():
        final = float(model.alignment(*views))
    assert final > sims[0] + 0.1, (sims, final)
    assert all(b > a for a, b in zip(sims, sims[1:])), sims
    for k, v in model.reference.state_dict().items():
        assert torch.equal(v, ref_before[k]), k  # frozen


def test_loss_adds_weighted_alignment():
    _, model = _build_pair('simclr', 0.5)
    model.set_reference_from_backbone()
    model.train()
    views = _views()
    losses = model.loss(views, None)
    assert torch.allclose(losses['loss_align'], -0.5 * losses['align_sim'])
    assert -0.5 <= float(losses['loss_align']) <= 0.5


def test_missing_reference_is_an_error():
    _, model = _build_pair('simclr', 1.0)
    with pytest.raises(RuntimeError, match='ClusteredServer'):
        model.loss(_views(), None)


def test_bad_arguments():
    init_default_scope('decssl_mm')
    with pytest.raises(ValueError, match='align_weight'):
        MODELS.build(dict(type='FeatARC', algorithm=_algo_cfg('simclr'),
                          align_weight=-1.0))
    with pytest.raises(KeyError, match='model.algorithm.type'):
        MODELS.build(dict(type='FeatARC', algorithm=dict(type='NoSuchSSL')))


def test_pooled_embedding_is_unit_norm():
    _, model = _build_pair('simclr', 1.0)
    model.eval()
    with torch.no_grad():
        f = pooled_embedding(model.backbone, _views()[0])
    assert f.shape == (8, 64)
    assert torch.allclose(f.norm(dim=1), torch.ones(8), atol=1e-5)
