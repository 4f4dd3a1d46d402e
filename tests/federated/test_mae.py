"""MAE (ViT) runs federated by config alone."""
import os.path as osp
import uuid

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from _helpers.configs import ROOT, finish_tiny_cfg

MAE = 'configs/decssl/mae_vit-tiny-p4_fmnist_dir0.1.py'


class _InitialState(Hook):
    """Keeps a copy of the model's state when training starts."""

    def before_train(self, runner) -> None:
        self.state = {
            k: v.detach().clone()
            for k, v in runner.model.state_dict().items()
        }


def _tiny_mae_cfg(data_root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, MAE))
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
    train = cfg.train_dataloader
    train.batch_size = 8
    train.num_workers = 0
    train.persistent_workers = False
    train.dataset.dataset.data_root = data_root
    train.dataset.partition.num_clients = 2
    train.dataset.partition.min_size = 8
    cfg.train_cfg.rounds = 1
    cfg.train_cfg.local_iters = 2
    cfg.train_cfg.local_epochs = None
    return finish_tiny_cfg(cfg, rounds=1)


def test_mae_config_sizes():
    cfg = Config.fromfile(osp.join(ROOT, MAE))
    backbone, neck = cfg.model.backbone, cfg.model.neck
    assert backbone.type == 'MAEViT' and backbone.img_size == 32
    assert backbone.patch_size == 4 and neck.num_patches == 64
    assert neck.embed_dim == backbone.arch.embed_dims
    assert cfg.train_cfg.type == 'FederatedTrainLoop'
    assert cfg.train_dataloader.dataset.partition.type == 'Dirichlet'
    # one view per image
    pipeline = cfg.train_dataloader.dataset.dataset.pipeline
    assert all(t['type'] != 'MultiView' for t in pipeline)


def test_mae_one_round(fmnist_root, tmp_path):
    runner = Runner.from_cfg(_tiny_mae_cfg(fmnist_root, str(tmp_path)))
    initial = _InitialState()
    runner.register_hook(initial)
    runner.train()
    loop = runner.train_loop
    assert loop.iter == 4  # 2 clients x 2 local iterations
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)), loss
    # every tensor is exchanged (no client-local keys)
    state = runner.model.state_dict()
    assert set(loop.exchanged_keys) == set(state)
    changed = {
        k for k, v in state.items()
        if v.is_floating_point() and not torch.equal(v, initial.state[k])
    }
    for prefix in ('backbone.layers.', 'neck.decoder_blocks.',
                   'backbone.patch_embed.'):
        assert any(k.startswith(prefix) for k in changed), prefix
    # the fixed sin-cos position embeddings stay fixed
    assert 'backbone.pos_embed' not in changed
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))


def test_mae_features_see_the_whole_image():
    """kNN/probe features of an MAE backbone: unmasked, deterministic, one
    mean patch token (class token left out) per image."""
    from mmpretrain.registry import MODELS

    from decssl_mm.evaluation import pooled_embedding
    cfg = Config.fromfile(osp.join(ROOT, MAE))
    backbone = MODELS.build(cfg.model.backbone)
    backbone.eval()  # MAEViT.train() returns None: no chaining
    x = torch.randn(3, 3, 32, 32)
    torch.manual_seed(0)
    a = pooled_embedding(backbone, x, normalize=False)
    torch.manual_seed(1)
    b = pooled_embedding(backbone, x, normalize=False)
    dim = cfg.model.backbone.arch.embed_dims
    assert a.shape == (3, dim)
    assert torch.equal(a, b)  # no random masking
    with torch.no_grad():
        tokens = backbone(x, mask=None)[-1]  # N x (1 + 64) x C
    assert tokens.shape[1] == 1 + 64
    assert torch.allclose(a, tokens[:, 1:].mean(dim=1))
    assert not torch.allclose(a, tokens.mean(dim=1))
