"""tools/analysis/head_diagnosis.py: own-head accuracy and collapse."""
import json

import pytest
import torch

from ._sweep_module import ROOT, load_tool

diag = load_tool('head_diagnosis')

DEC_SL = f'{ROOT}/configs/study/supervised_r18w16_fmnist_dec.py'


def test_summarize_flags_a_collapsed_head():
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    scores = torch.zeros(6, 3)
    scores[:, 2] = 1.0  # always class 2
    scores[0, 0] = 2.0  # except once
    info = diag.summarize(scores, labels, torch.ones(3, 4))
    assert info['pred_counts'] == [1, 0, 5]
    assert info['true_counts'] == [2, 2, 2]
    assert info['majority_class'] == 2
    assert info['majority_share'] == pytest.approx(83.33, abs=0.01)
    assert info['top1'] == pytest.approx(50.0)
    assert info['row_norms'] == [2.0, 2.0, 2.0]


def test_main_on_a_checkpoint(fmnist_root, tmp_path, capsys):
    import decssl_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from decssl_mm.registry import MODELS
    init_default_scope('decssl_mm')
    cfg = Config.fromfile(DEC_SL)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():  # a head that prefers class 3 for every image
        model.head.fc.bias.zero_()
        model.head.fc.bias[3] = 100.0
    ckpt = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}},
               ckpt)
    out = str(tmp_path / 'head.json')
    info = diag.main([
        DEC_SL, ckpt, '--json', out, '--cfg-options',
        f'knn_val_dataloader.dataset.data_root={fmnist_root}',
        'knn_val_dataloader.dataset.subset=None'
    ])
    assert info['majority_class'] == 3 and info['majority_share'] == 100.0
    assert sum(info['pred_counts']) == sum(info['true_counts']) == 60
    assert info['top1'] == pytest.approx(
        100.0 * info['true_counts'][3] / 60, abs=0.01)
    assert len(info['row_norms']) == 10
    with open(out) as f:
        assert json.load(f)['pred_counts'] == info['pred_counts']
    assert '100.0 % of the predictions are class 3' in capsys.readouterr().out


def test_refuses_a_model_without_head(tmp_path):
    cfg = f'{ROOT}/configs/study/simclr_r18w16_fmnist_dec.py'
    with pytest.raises(SystemExit, match='no classifier head'):
        diag.main([cfg, str(tmp_path / 'missing.pth')])
