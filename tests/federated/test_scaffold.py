"""SCAFFOLD: one client step and one server update pinned by hand."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from _helpers.configs import tiny_federated_cfg
from decssl_mm.federated.messages import (ClientResult, ClientTask,
                                          RunContext, check_extras)
from decssl_mm.federated.servers import FedAvgServer, ScaffoldServer
from decssl_mm.federated.trainers import ClientTrainer, ScaffoldTrainer


class _TinyModel(BaseModel):
    """``loss = sum(w * x)``: its gradient w.r.t. ``w`` is ``x``."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 1, bias=False)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return {'loss': (self.backbone.weight * inputs).sum()}


def _task(start, control, client_id=0):
    return ClientTask(client_id=client_id, round_idx=0, start_state=start,
                      exchanged_keys=tuple(start), num_samples=4, seed=0,
                      extras={'server_control': control})


def test_one_client_step_and_its_control_update():
    model = _TinyModel()
    trainer = ScaffoldTrainer()
    lr = 0.5
    trainer.setup(model, OptimWrapper(torch.optim.SGD(model.parameters(),
                                                      lr=lr)))
    x0 = torch.tensor([[1.0, -2.0]])
    c = {'backbone.weight': torch.tensor([[0.2, 0.4]])}
    ci = {'backbone.weight': torch.tensor([[1.0, -1.0]])}
    batch = {'inputs': torch.tensor([[0.5, 1.5]])}
    result = trainer.fit(_task({'backbone.weight': x0}, c), [batch],
                         {'scaffold': {'control': ci}})
    # y = x0 - lr * (g - c_i + c), g = the batch
    g = batch['inputs']
    y = x0 - lr * (g - ci['backbone.weight'] + c['backbone.weight'])
    assert torch.allclose(result.update['backbone.weight'], y)
    # option II after one step: c_i+ = c_i - c + (x0 - y) / lr = g
    new_ci = result.local_state['scaffold']['control']['backbone.weight']
    assert torch.allclose(new_ci, g)
    assert torch.allclose(result.extras['control_delta']['backbone.weight'],
                          g - ci['backbone.weight'])
    assert result.num_samples == 4


def test_one_server_update(tmp_path):
    model = _TinyModel()
    with torch.no_grad():
        model.backbone.weight.copy_(torch.tensor([[1.0, 1.0]]))
    server = ScaffoldServer()
    server.setup(RunContext(model, None, np.array([1, 3, 4, 4]), 2, 0,
                            str(tmp_path)))
    c0 = server.control['backbone.weight']
    assert torch.equal(c0, torch.zeros(1, 2))
    server.begin_round(0, [0, 1])
    task = server.configure(1, 0, 3)
    assert task.extras['server_control'] is server.control
    updates = {0: ([[3.0, 1.0]], [[1.0, 2.0]], 1),
               1: ([[-1.0, 5.0]], [[3.0, -2.0]], 3)}
    for k, (w, dc, n) in updates.items():
        server.add(ClientResult(
            k, 0, {'backbone.weight': torch.tensor(w)}, n,
            extras={'control_delta': {'backbone.weight': torch.tensor(dc)}}))
    server.finish_round(0)
    # x = sample-weighted mean: (1 * [3, 1] + 3 * [-1, 5]) / 4
    assert torch.allclose(server.global_state['backbone.weight'],
                          torch.tensor([[0.0, 4.0]]))
    # c = 0 + (1 / N) * sum delta_c = ([1, 2] + [3, -2]) / 4
    assert torch.allclose(server.control['backbone.weight'],
                          torch.tensor([[1.0, 0.0]]))
    # the control is in the checkpoint and comes back
    state = server.state_dict()
    other = ScaffoldServer()
    other.setup(RunContext(model, None, np.array([1, 3, 4, 4]), 2, 0,
                           str(tmp_path)))
    other.load_state_dict(state)
    assert torch.equal(other.control['backbone.weight'],
                       server.control['backbone.weight'])


def test_mismatched_trainer_and_server_are_refused():
    with pytest.raises(ValueError, match='ScaffoldTrainer.*FedAvgServer'):
        check_extras(ScaffoldTrainer(), FedAvgServer())
    with pytest.raises(ValueError, match='ClientTrainer.*ScaffoldServer'):
        check_extras(ClientTrainer(), ScaffoldServer())
    check_extras(ScaffoldTrainer(), ScaffoldServer())


def test_scaffold_config_runs_two_rounds(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(
        'configs/decssl/simclr_r18_fmnist_dir0.1_scaffold.py', fmnist_root,
        str(tmp_path), rounds=2, num_clients=2, local_iters=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    assert type(loop.server).__name__ == 'ScaffoldServer'
    c = loop.server.control
    assert c and all(torch.isfinite(v).all() for v in c.values())
    assert any(v.abs().sum() > 0 for v in c.values())
    saved = loop.store.load(0)
    assert set(saved['scaffold']['control']) == set(c)
    hub = runner.message_hub
    assert np.isfinite(hub.get_scalar('train/loss_scaffold').current())


@pytest.mark.parametrize('config,label', [
    ('simclr_r18_fmnist_dir0.1_scaffold.py', 'Scaffold'),
    ('simclr_r18_fmnist_dir0.1_fedprox.py', 'FedProx'),
    ('simclr_r18_fmnist_dir0.1.py', 'FedAvg'),
])
def test_study_labels_a_trainer_by_its_own_name(config, label):
    from mmengine.config import Config

    from _helpers.configs import ROOT
    from decssl_mm.study.plan import derived_fields
    cfg = Config.fromfile(f'{ROOT}/configs/decssl/{config}')
    assert derived_fields(cfg)['aggregation'] == label
