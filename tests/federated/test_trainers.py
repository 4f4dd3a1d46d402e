"""Client trainers: FedProx and FedEMA, hook stages, bad settings."""
import glob
import math

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg
from decssl_mm.federated.messages import ClientTask
from decssl_mm.federated.trainers import FedEMATrainer, FedProxTrainer
from decssl_mm.federated.trainers.fedema_trainer import fedema_mu


# ------------------------------------------------------------ stand-ins
class _TinyModel(BaseModel):
    """``loss = sum(w * x)``: its gradient w.r.t. ``w`` is ``x``."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 1, bias=False)
        self.register_buffer('count', torch.zeros(()))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return {'loss': (self.backbone.weight * inputs).sum()}


def _setup(trainer, model, lr=0.5):
    trainer.setup(model, OptimWrapper(torch.optim.SGD(model.parameters(),
                                                      lr=lr)))


def _task(start, client_id=0):
    """A task starting from ``start``, every key exchanged."""
    return ClientTask(client_id=client_id, round_idx=0, start_state=start,
                      exchanged_keys=tuple(start), num_samples=1, seed=0)


def _state(w, count=0.0):
    return {'backbone.weight': torch.tensor([w]),
            'count': torch.tensor(float(count))}


# ---------------------------------------------------------------- FedProx
def test_fedprox_step_matches_hand_computation():
    model = _TinyModel()
    start = _state([1.0, -2.0])
    trainer = FedProxTrainer(mu=0.2)
    _setup(trainer, model)
    trainer.start_weights(_task(start), None)  # the anchor: the start model
    with torch.no_grad():
        model.backbone.weight.copy_(torch.tensor([[3.0, 0.0]]))
    x = torch.tensor([[0.5, 1.5]])
    out = trainer.train_step({'inputs': x})
    w0, wg = torch.tensor([3.0, 0.0]), torch.tensor([1.0, -2.0])
    # loss_prox = mu/2 * ||w0 - wg||^2 = 0.1 * (4 + 4)
    assert math.isclose(float(out['loss_prox']), 0.8, rel_tol=1e-6)
    # w1 = w0 - lr * (x + mu * (w0 - wg))
    want = w0 - 0.5 * (x[0] + 0.2 * (w0 - wg))
    assert torch.allclose(model.backbone.weight[0], want)


def test_fedprox_mu_zero_is_the_models_own_step():
    model = _TinyModel()
    trainer = FedProxTrainer(mu=0.0)
    _setup(trainer, model)
    trainer.start_weights(_task(_state([1.0, -2.0])), None)
    out = trainer.train_step({'inputs': torch.tensor([[0.5, 1.5]])})
    assert 'loss_prox' not in out


def _run(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_fedprox_mu0_equals_fedavg_bitwise(fmnist_root, tmp_path):
    cfgs = []
    for name, trainer in (('avg', None),
                          ('prox', dict(type='FedProxTrainer', mu=0.0))):
        cfg = tiny_federated_cfg('configs/decssl/simclr_r18_fmnist_dir0.1.py',
                                 fmnist_root, str(tmp_path / name), rounds=2,
                                 num_clients=2, local_iters=2)
        if trainer:
            cfg.train_cfg.trainer = trainer
        cfgs.append(cfg)
    a, b = (_run(c).train_loop for c in cfgs)
    assert type(b.trainer).__name__ == 'FedProxTrainer'
    for k, v in a.global_state.items():
        assert torch.equal(v, b.global_state[k]), k


def test_fedprox_config_runs_and_pulls_towards_global(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(
        'configs/decssl/simclr_r18_fmnist_dir0.1_fedprox.py', fmnist_root,
        str(tmp_path), rounds=1, num_clients=2, local_iters=2)
    runner = _run(cfg)
    prox = runner.message_hub.get_scalar('train/loss_prox').current()
    # the second local step starts away from the global model
    assert math.isfinite(prox) and prox > 0


# ----------------------------------------------------------------- FedEMA
def test_fedema_update_matches_hand_computation():
    model = _TinyModel()
    glob_ = _state([1.0, 1.0])
    trainer = FedEMATrainer(tau=0.6, divergence_keys=[r'^backbone\.'])
    _setup(trainer, model)
    # first participation: no own model, start from the global one
    assert trainer.start_weights(_task(glob_, 3), None) is glob_
    assert trainer.last_mu is None
    # second: lambda = tau / ||g - l|| = 0.6 / 5, so mu = 0.6
    own = {'model': {'backbone.weight': torch.tensor([[4.0, 5.0]]),
                     'count': torch.tensor(7.0)},
           'lambda': None}
    start = trainer.start_weights(_task(glob_, 3), {'fedema': own})
    assert math.isclose(trainer._lambda, 0.12, rel_tol=1e-9)
    assert math.isclose(trainer.last_mu, 0.6, rel_tol=1e-9)
    want = 0.6 * torch.tensor([4.0, 5.0]) + 0.4 * torch.tensor([1.0, 1.0])
    assert torch.allclose(start['backbone.weight'][0], want)
    # the buffer is mixed too (an exchanged floating tensor)
    assert math.isclose(float(start['count']), 0.6 * 7.0, rel_tol=1e-6)
    # later: lambda kept, divergence 10 -> mu = min(1.2, 1) = 1
    own = {'model': {'backbone.weight': torch.tensor([[7.0, 9.0]]),
                     'count': torch.tensor(0.0)}, 'lambda': 0.12}
    start = trainer.start_weights(_task(glob_, 3), {'fedema': own})
    assert trainer.last_mu == 1.0
    assert torch.equal(start['backbone.weight'], own['model']
                       ['backbone.weight'])
    # and divergence 2.5 -> mu = 0.3
    mu, lam = fedema_mu(glob_, {'backbone.weight': torch.tensor([[2.5, 3.0]]
                                                                )},
                        ['backbone.weight'], 0.6, 0.12)
    assert math.isclose(mu, 0.12 * 2.5, rel_tol=1e-9) and lam == 0.12


def test_fedema_config_runs_two_rounds(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(
        'configs/decssl/byol_r18_fmnist_dir0.1_fedema.py', fmnist_root,
        str(tmp_path), rounds=2, num_clients=2, local_iters=1)
    runner = _run(cfg)
    loop = runner.train_loop
    assert not any(k.startswith('target_net.') for k in loop.exchanged_keys)
    saved = loop.store.load(0)
    assert set(saved['fedema']['model']) <= set(loop.exchanged_keys)
    assert saved['fedema']['lambda'] > 0  # set at its second round
    assert 0 < loop.trainer.last_mu <= 1


# ------------------------------------------------------------ hook stages
class _ClientRecorder(Hook):

    def __init__(self):
        self.events = []

    def before_client(self, runner, client_id, round_idx):
        self.events.append(('before', round_idx, client_id))

    def after_client(self, runner, client_id, round_idx, trained):
        self.events.append(('after', round_idx, client_id, trained))


def test_client_hook_stages_fire(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg('configs/decssl/simclr_r18_fmnist_dir0.1.py',
                             fmnist_root, str(tmp_path), rounds=2,
                             num_clients=2, local_iters=1)
    runner = Runner.from_cfg(cfg)
    rec = _ClientRecorder()
    runner.register_hook(rec)
    runner.train()
    assert len(rec.events) == 8
    # each client: before, then after (trained), round by round
    for i in range(0, 8, 2):
        before, after = rec.events[i], rec.events[i + 1]
        assert before[0] == 'before' and after[0] == 'after'
        assert before[1:] == after[1:3] and after[3] is True
    assert [e[1] for e in rec.events] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {e[2] for e in rec.events[:4]} == {0, 1}


# ------------------------------------------------------------ bad settings
@pytest.mark.parametrize('key,value,error,match', [
    ('trainer', dict(type='FedProxTrainer', mu=-0.1), ValueError,
     r'train_cfg\.trainer\.mu'),
    ('trainer', dict(type='FedEMATrainer', tau=0), ValueError,
     r'train_cfg\.trainer\.tau'),
    ('trainer', dict(type='NoSuchTrainer'), KeyError,
     r'train_cfg\.trainer\.type'),
    ('server', dict(type='NoSuchServer'), KeyError,
     r'train_cfg\.server\.type'),
])
def test_bad_strategy_settings_fail_before_training(key, value, error, match,
                                                     fmnist_root, tmp_path):
    cfg = tiny_federated_cfg('configs/decssl/simclr_r18_fmnist_dir0.1.py',
                             fmnist_root, str(tmp_path), rounds=1,
                             num_clients=2, local_iters=1)
    cfg.train_cfg[key] = value
    runner = Runner.from_cfg(cfg)
    with pytest.raises(error, match=match):
        runner.train()
    assert not glob.glob(str(tmp_path / 'epoch_*.pth'))
