"""One pooled feature and one rule for a config's evaluation loaders."""
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from decssl_mm.evaluation import (EvalConfigError, KNNEvalHook,
                                  find_eval_loaders, pool_output,
                                  pooled_embedding)

LOADER_A = dict(batch_size=2, dataset=dict(type='A'))
LOADER_B = dict(batch_size=2, dataset=dict(type='B'))
LOADER_C = dict(batch_size=2, dataset=dict(type='C'))


class _TwoStages(nn.Module):

    def forward(self, x):
        return (x * 2, x + 1)


def test_pooled_embedding_pools_the_last_output():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).reshape(2, 3, 2, 2)
    raw = pooled_embedding(_TwoStages(), x, normalize=False)
    assert torch.allclose(raw, (x + 1).mean(dim=(2, 3)))
    unit = pooled_embedding(_TwoStages(), x)
    assert torch.allclose(unit.norm(dim=1), torch.ones(2))
    assert torch.allclose(unit, raw / raw.norm(dim=1, keepdim=True))
    assert pool_output(torch.ones(4, 5)).shape == (4, 5)
    # the FeatARC model uses the very same function
    from decssl_mm.models import featarc
    assert featarc.pooled_embedding is pooled_embedding


def test_knn_keys_come_before_a_hook():
    hook = dict(type='KNNEvalHook', train_dataloader=LOADER_C,
                val_dataloader=LOADER_C)
    cfg = Config(dict(knn_train_dataloader=LOADER_A,
                      knn_val_dataloader=LOADER_B, custom_hooks=[hook]))
    bank, query = find_eval_loaders(cfg)
    assert bank['dataset']['type'] == 'A' and query['dataset']['type'] == 'B'
    bank['dataset']['type'] = 'changed'  # a copy
    assert cfg.knn_train_dataloader.dataset.type == 'A'
    # without the keys: the hook's loaders
    cfg = Config(dict(custom_hooks=[dict(type='CheckpointHook'), hook],
                      val_dataloader=LOADER_B))
    bank, query = find_eval_loaders(cfg)
    assert bank['dataset']['type'] == query['dataset']['type'] == 'C'


def test_missing_loaders_name_the_config_and_keys(tmp_path):
    path = tmp_path / 'no_eval.py'
    # training data and val_dataloader are never used in their place
    path.write_text("train_dataloader = dict(dataset=dict(type='A'))\n"
                    "val_dataloader = dict(dataset=dict(type='B'))\n"
                    "knn_train_dataloader = dict(dataset=dict(type='C'))\n")
    with pytest.raises(EvalConfigError) as err:
        find_eval_loaders(Config.fromfile(str(path)))
    msg = str(err.value)
    assert 'no_eval.py' in msg
    assert 'knn_train_dataloader + knn_val_dataloader' in msg
    assert 'KNNEvalHook' in msg
    with pytest.raises(EvalConfigError, match='^my.py: '):
        find_eval_loaders(Config(dict()), 'my.py')


def test_hook_takes_the_config_loaders_when_given_none():
    hook = KNNEvalHook()

    class _Runner:
        cfg = Config(dict(knn_train_dataloader=LOADER_A,
                          knn_val_dataloader=LOADER_B))

    hook.before_run(_Runner())
    assert hook.train_dataloader_cfg['dataset']['type'] == 'A'
    assert hook.val_dataloader_cfg['dataset']['type'] == 'B'
    with pytest.raises(ValueError, match='both'):
        KNNEvalHook(train_dataloader=LOADER_A)

    class _Bare:
        cfg = Config(dict())

    with pytest.raises(EvalConfigError):
        KNNEvalHook().before_run(_Bare())
