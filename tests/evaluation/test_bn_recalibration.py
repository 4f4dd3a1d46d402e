"""BatchNorm re-estimation before the probe: only running statistics
change, and they become the plain mean over the probe's images."""
import torch
import torch.nn as nn

from decssl_mm.evaluation.bn_recalibration import (recalibrate_bn,
                                                   recalibrated_copy)


class _Pre(nn.Module):

    def forward(self, data, training=False):
        return dict(inputs=data['inputs'].float(),
                    data_samples=data['data_samples'])


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.data_preprocessor = _Pre()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.Conv2d(4, 4, 1),
                                      nn.BatchNorm2d(4, momentum=0.3))


def _batches(n=3):
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(5, 3, 8, 8, generator=g) * 3 + 2,
                 data_samples=None) for _ in range(n)]


def test_only_running_statistics_change():
    torch.manual_seed(0)
    model = _Model().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert recalibrate_bn(model, _batches()) == 3
    after = model.state_dict()
    for k, v in before.items():
        if 'running_' in k or 'num_batches_tracked' in k:
            assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, after[k]), k
    assert not model.training  # mode restored
    assert model.backbone[4].momentum == 0.3  # momentum restored
    assert int(model.backbone[1].num_batches_tracked) == 3


def test_statistics_are_the_mean_over_batches_and_copy_leaves_model():
    torch.manual_seed(0)
    model = _Model()
    batches = _batches()
    twin = recalibrated_copy(model, batches)
    assert torch.equal(model.backbone[1].running_mean, torch.zeros(4))
    with torch.no_grad():
        conv = model.backbone[0]
        means = torch.stack([conv(b['inputs']).mean((0, 2, 3))
                             for b in batches])
    torch.testing.assert_close(twin.backbone[1].running_mean,
                               means.mean(0), rtol=1e-5, atol=1e-5)
    assert recalibrate_bn(model, batches, num_batches=1) == 1
