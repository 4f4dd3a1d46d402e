"""Per-client work follows the model's device and memory format; bf16 AMP
and channels-last run by config through a real round."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg
from decssl_mm.federated.aggregators import ClientUpdateRejected, FedAvg
from decssl_mm.federated.aggregators.base_aggregator import fold_weighted
from decssl_mm.federated.aggregators.update_checks import all_finite
from decssl_mm.utils.state_dict import copy_state

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
AMP = 'configs/decssl/simclr_r18_fmnist_dir0.1_amp.py'
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def _model(device):
    """A small conv model: 4-d weights, BN buffers (float and int)."""
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                            torch.nn.Conv2d(4, 2, 1))
    return m.to(device)


def _device_of(model):
    return next(model.parameters()).device


# ------------------------------------------------------------ finiteness
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16,
                                   torch.float16, torch.float64])
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
def test_all_finite_finds_any_bad_element(dtype, bad):
    ts = [torch.randn(5, dtype=dtype),
          torch.randn(2, 3, 4, 4, dtype=dtype).to(
              memory_format=torch.channels_last),
          torch.empty(0, dtype=dtype)]
    assert all_finite(ts)
    ts[1][1, 2, 3, 0] = bad
    assert not all_finite(ts)


def test_all_finite_does_not_overflow_on_large_values():
    assert all_finite([torch.full((4, ), 3e38),
                       torch.full((4, ), 1e300, dtype=torch.float64)])


def test_all_finite_norm_overflow_is_decided_exactly():
    # float32 norms overflow (1e30 squared), float64 does not: the finite
    # tensors pass, a bad element among them is still found
    ts = [torch.full((4, ), 1e30), torch.full((3, ), -1e30),
          torch.ones(2, dtype=torch.float64)]
    assert all_finite(ts)
    ts[2][1] = float('nan')
    assert not all_finite(ts)
    ts[2][1] = 0.
    ts[1][0] = -float('inf')
    assert not all_finite(ts)


def test_rejected_update_names_the_first_bad_key():
    agg = FedAvg(exclude=[])
    g = {'a': torch.zeros(3), 'b': torch.zeros(2), 'c': torch.zeros(2)}
    agg.select_keys(list(g))
    agg.begin_round(g)
    bad = {'a': torch.ones(3), 'b': torch.tensor([1., float('nan')]),
           'c': torch.tensor([float('inf'), 0.])}
    with pytest.raises(ClientUpdateRejected, match="'b' holds non-finite"):
        agg.add(0, bad, 1)
    assert agg.num_clients == 0 and not agg.running_sums()


# ------------------------------------------------- fused copies and sums
def test_fold_weighted_equals_per_tensor_sums_bitwise():
    torch.manual_seed(0)
    vals = [{'w': torch.randn(4, 3, 3, 3).to(
        memory_format=torch.channels_last), 'b': torch.randn(4)}
        for _ in range(3)]
    fused, ref = {}, {}
    for i, v in enumerate(vals):
        fold_weighted(fused, v, ['w', 'b'], float(i + 2))
        for k in ('w', 'b'):
            if k in ref:
                ref[k].add_(v[k], alpha=float(i + 2))
            else:
                ref[k] = v[k].double().mul_(float(i + 2))
    for k in ref:
        assert fused[k].dtype == torch.float64
        assert torch.equal(fused[k], ref[k]), k


def test_copy_state_keeps_destination_layout_and_dtypes():
    m = _model('cpu').to(memory_format=torch.channels_last)
    dst = m.state_dict()
    src = {k: (v.contiguous() + 1) if v.is_floating_point() else v + 5
           for k, v in dst.items()}
    with torch.no_grad():
        copy_state(dst, src)
    for k, v in m.state_dict().items():
        assert torch.equal(v, src[k]), k
    assert m[0].weight.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------- device following
@pytest.mark.parametrize('device', DEVICES)
def test_aggregation_stays_on_the_models_device(device):
    model = _model(device)
    dev = _device_of(model)
    sd = model.state_dict()
    agg = FedAvg(exclude=[])
    agg.select_keys(list(sd), [n for n, _ in model.named_parameters()])
    glob_state = {k: v.detach().clone() for k, v in sd.items()}
    agg.begin_round(glob_state)
    clients = []
    for i in range(3):
        c = {k: (v + i) if v.is_floating_point() else v + i
             for k, v in glob_state.items()}
        clients.append(c)
        agg.add(i, c, 10 * (i + 1))
    # the running sums live with the model, in float64
    assert {t.device for t in agg.running_sums().values()} == {dev}
    assert {t.dtype for t in agg.running_sums().values()} == {torch.float64}
    new = agg.finalize()
    for k, v in new.items():
        assert v.device == dev and v.dtype == glob_state[k].dtype, k
    w = torch.tensor([10., 20., 30.], dtype=torch.float64)
    for k in ('0.weight', '1.running_mean'):
        expect = sum(wi * c[k].double() for wi, c in zip(w, clients)) / 60
        assert torch.allclose(new[k].double(), expect.to(dev), atol=1e-6)
    assert int(new['1.num_batches_tracked']) == 2


# ----------------------------------------------------------- real rounds
class _Probe(Hook):
    """Records the dtype of the first conv's output and the layouts."""

    def __init__(self):
        self.out_dtypes = set()
        self.server_layouts = []
        self._h = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self._h is None:
            conv = runner.train_loop.model.backbone.conv1
            self._h = conv.register_forward_hook(
                lambda m, i, o: self.out_dtypes.add(o.dtype))

    def after_train_epoch(self, runner):
        g = runner.train_loop.global_state['backbone.conv1.weight']
        self.server_layouts.append(
            g.is_contiguous(memory_format=torch.channels_last))


def _round(cfg):
    probe = _Probe()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(probe)
    runner.train()
    return runner, probe


def test_channels_last_round_equals_the_plain_round(fmnist_root, tmp_path):
    def cfg(d, hooks):
        c = tiny_federated_cfg(SIMCLR, fmnist_root, str(tmp_path / d),
                               rounds=2, num_clients=2, local_iters=1)
        c.randomness = dict(seed=0, deterministic=True)
        c.custom_hooks = hooks
        return c

    plain, _ = _round(cfg('a', []))
    cl, probe = _round(cfg('b', [dict(type='ChannelsLastHook')]))
    w = cl.train_loop.model.backbone.conv1.weight
    assert w.is_contiguous(memory_format=torch.channels_last)
    assert probe.server_layouts == [True, True]
    a, b = plain.model.state_dict(), cl.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-4), k


def _fake_gpu_for_amp(monkeypatch):
    """mmengine refuses AmpOptimWrapper without a GPU; its bf16 autocast
    runs on a CPU, and the grad scaler disables itself there."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    if not torch.cuda.is_available():
        monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    pytest.importorskip('torch.amp')


@pytest.mark.parametrize('trainer', [None, dict(type='FedProxTrainer',
                                                mu=0.1)])
def test_bf16_amp_config_runs_a_round(fmnist_root, tmp_path, monkeypatch,
                                      trainer):
    _fake_gpu_for_amp(monkeypatch)
    cfg = tiny_federated_cfg(AMP, fmnist_root, str(tmp_path), rounds=1,
                             num_clients=2, local_iters=1)
    cfg.train_dataloader.pin_memory = torch.cuda.is_available()
    if trainer:
        cfg.train_cfg.trainer = trainer
    runner, probe = _round(cfg)
    assert type(runner.optim_wrapper).__name__ == 'AmpOptimWrapper'
    # the local steps ran under bf16 autocast; the weights stay float32
    assert probe.out_dtypes == {torch.bfloat16}
    sd = runner.model.state_dict()
    assert sd['backbone.conv1.weight'].dtype == torch.float32
    assert probe.server_layouts == [True]
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss))
    for v in runner.train_loop.global_state.values():
        assert torch.isfinite(v.double()).all()
    assert not glob.glob(osp.join(str(tmp_path), 'client_states', '*'))
