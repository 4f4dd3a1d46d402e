"""A new evaluation is one registered class + its name: the hook,
``tools/analysis/knn_eval.py`` and the sweep run it without other edits.

Shown twice: with ``ncm`` (``evaluations/nearest_mean.py``, a file no other
module names) and with a class registered here, in the test, alone.
"""
import math
import os
import os.path as osp
from typing import Dict

import pytest
from mmengine.runner import Runner

import decssl_mm  # noqa: F401
from decssl_mm.evaluation import evaluate_checkpoint
from decssl_mm.evaluation.evaluations import BaseEvaluation, EvalContext
from decssl_mm.registry import EVALUATIONS
from ._tiny import SIMCLR, tiny_study_cfg
from .test_untrained_references import ROOT, _tool
from _helpers.configs import dump_eval_cfg

NEW = 'mean_norm'


class MeanNormEvaluation(BaseEvaluation):
    """Mean L2 norm of the query features (an evaluation written here)."""

    label = 'mean feature norm'
    report = ('value', )

    def compute(self, ctx: EvalContext) -> Dict[str, float]:
        feats = ctx.features(self.feature)
        return {'value': float(feats.test_x.norm(dim=1).mean())}


@pytest.fixture(scope='module')
def registered():
    EVALUATIONS.register_module(NEW, module=MeanNormEvaluation)
    yield NEW
    EVALUATIONS._module_dict.pop(NEW)


def test_nearest_mean_file_is_named_by_no_other_module():
    hits = []
    for top in ('decssl_mm', 'tools'):
        for folder, _, files in os.walk(osp.join(ROOT, top)):
            for name in files:
                path = osp.join(folder, name)
                if not name.endswith('.py') or name == 'nearest_mean.py':
                    continue
                with open(path, encoding='utf-8') as f:
                    text = f.read()
                if 'nearest_mean' in text or 'NearestMean' in text:
                    hits.append(path)
    assert hits == []


@pytest.fixture(scope='module')
def hook_run(fmnist_root, tmp_path_factory, registered):
    """One round of the tiny SimCLR with an EvaluationHook running kNN, the
    nearest class mean and the evaluation registered here."""
    work = str(tmp_path_factory.mktemp('new_eval_run'))
    cfg = tiny_study_cfg(SIMCLR, fmnist_root, work, rounds=1, local_iters=2)
    cfg.custom_hooks = [dict(type='EvaluationHook',
                             evaluations=['knn', 'ncm', registered])]
    runner = Runner.from_cfg(cfg)
    runner.train()
    return dict(cfg=cfg, runner=runner, ckpt=osp.join(work, 'epoch_1.pth'))


def test_hook_runs_new_evaluations_with_references(hook_run, registered):
    hub = hook_run['runner'].message_hub
    for key in ('ncm/top1', 'ncm/top5', f'{registered}/value'):
        for suffix in ('', '_untrained_init', '_untrained_default'):
            value = hub.get_scalar(key + suffix).current()
            assert math.isfinite(value), key + suffix
    assert 0 <= hub.get_scalar('ncm/top1').current() <= 100
    # the same figure by evaluate_checkpoint, same network and data
    result = evaluate_checkpoint(hook_run['cfg'], hook_run['ckpt'],
                                 evals=('ncm', registered), seed=0)
    assert result['metrics']['ncm_top1'] == pytest.approx(
        hub.get_scalar('ncm/top1').current(), abs=1e-3)
    assert result['references']['untrained_default']['ncm_top1'] == \
        pytest.approx(hub.get_scalar('ncm/top1_untrained_default').current(),
                      abs=1e-3)
    assert result['metrics'][f'{registered}_value'] == pytest.approx(
        hub.get_scalar(f'{registered}/value').current(), abs=1e-3)


def test_knn_eval_tool_runs_new_evaluations(hook_run, registered, tmp_path,
                                            capsys):
    cfg = hook_run['cfg']
    path = dump_eval_cfg(cfg, str(tmp_path / 'eval_cfg.py'))
    tool = _tool('knn_eval')
    figures = tool.main([path, hook_run['ckpt'], '--eval',
                         f'ncm,{registered}'])
    hub = hook_run['runner'].message_hub
    assert figures['top1'] == pytest.approx(
        hub.get_scalar('ncm/top1').current(), abs=1e-3)
    out = capsys.readouterr().out
    init = hub.get_scalar('ncm/top1_untrained_init').current()
    assert (f'nearest class mean top-1 {figures["top1"]:.2f} (untrained: '
            f'{init:.2f} model init, ') in out
    assert 'mean feature norm value ' in out
    with pytest.raises(SystemExit, match=r"--eval: unknown evaluation "
                       r"'nope'; registered: knn, linear, ncm"):
        tool.main([path, hook_run['ckpt'], '--eval', 'nope'])


def test_sweep_runs_new_evaluations(fmnist_root, tmp_path, registered):
    from study.test_sweep import SIMCLR as STUDY
    from study.test_sweep import TINY, sweep
    recs = sweep.main([
        '--config', STUDY, '--no-train', '--method-label', 'Init',
        '--work-dir', str(tmp_path / 'sweep'), '--data-root', fmnist_root,
        '--eval', f'ncm,ncm_bnre,{registered}', '--cfg-options', *TINY
    ])
    (rec, ) = recs
    assert rec['eval']['settings']['eval'] == ['ncm', 'ncm_bnre', registered]
    assert rec['eval']['settings']['ncm'] == dict(normalize=True)
    for key in ('ncm_top1', 'ncm_bnre_top1', f'{registered}_value'):
        assert math.isfinite(rec['metrics'][key]), key
        for ref in ('untrained_init', 'untrained_default'):
            assert math.isfinite(rec['references'][ref][key]), (key, ref)
    assert sweep.summary_line(rec).startswith('ncm_top1 ')
    with pytest.raises(SystemExit):
        sweep.parse_args(['--work-dir', 'x', '--eval', 'knn,nope'])


def test_sweep_point_key_settings_unchanged():
    """knn and linear enter a point's key as they did before the
    registry, so finished points of earlier sweeps are still found."""
    from decssl_mm.study import eval_settings
    from study.test_sweep import sweep
    args = sweep.parse_args(['--work-dir', 'x', '--knn-k', '10'])
    assert eval_settings(args) == {
        'eval': ['knn', 'linear'],
        'knn': {'k': 10, 'temperature': 0.1},
        'linear': {'epochs': 100, 'lr': 0.5, 'batch_size': 256,
                   'weight_decay': 1e-4},
        'train_subset': None, 'test_subset': None}
    bnre = sweep.parse_args(['--work-dir', 'x', '--eval', 'knn_bnre'])
    assert eval_settings(bnre) == {
        'eval': ['knn_bnre'], 'train_subset': None, 'test_subset': None}
