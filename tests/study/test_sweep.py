"""tools/analysis/sweep.py: planning, a tiny 2-point sweep, resume."""
import json
import math
import os
import os.path as osp

import pytest

from ._sweep_module import load_tool

sweep = load_tool('sweep')

SIMCLR = 'configs/study/simclr_r18w16_fmnist_dec.py'
DEC_SL = 'configs/study/supervised_r18w16_fmnist_dec.py'
CENTRAL_SL = 'configs/study/supervised_r18w16_fmnist_central.py'
# Shrinks any study config to a few-second run on the fake Fashion-MNIST.
TINY = [
    'rounds=1', 'local_iters=2', 'num_clients=4',
    'train_dataloader.batch_size=16', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'log_level=WARNING'
]


def _records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_two_point_sweep_writes_results_and_resumes(fmnist_root, tmp_path,
                                                    capsys):
    work = str(tmp_path / 'sweep')
    argv = [
        '--variants', f'SimCLR={SIMCLR}', f'Dec-SL={DEC_SL}', '--work-dir',
        work, '--runner', 'inprocess', '--data-root', fmnist_root,
        '--probe-epochs', '10', '--cfg-options', *TINY
    ]
    written = sweep.main(argv)
    assert [r['method'] for r in written] == ['SimCLR', 'Dec-SL']
    results = osp.join(work, 'results.jsonl')
    recs = _records(results)
    assert len(recs) == 2
    for rec in recs:
        assert rec['status'] == 'ok' and rec['trained'] is True
        for k in ('knn_top1', 'knn_top5', 'linear_top1', 'linear_top5'):
            assert math.isfinite(rec['metrics'][k]), (rec['method'], k)
            # beside it, the same network untrained, in two forms
            for ref in ('untrained_init', 'untrained_default'):
                assert math.isfinite(rec['references'][ref][k]), (k, ref)
        assert rec['rounds'] == 1
        assert rec['comm_bytes_total'] > 0
        assert rec['grid'] == {'method': rec['method']}
        assert rec['seed'] == 0 and rec['fields']['seed'] == 0
        assert 'FederatedTrainLoop' in rec['config_text']
        assert rec['overrides']['train_cfg.local_iters'] == 2
        assert rec['fields']['partition'] == 'dir0.1'
        assert rec['fields']['num_clients'] == 4
        assert rec['eval']['num_train'] == 120  # the fake data's train split
        assert rec['wall_time_s'] >= rec['train_time_s'] > 0
        # only the evaluated checkpoint is kept, no client states
        pths = [f for f in os.listdir(rec['work_dir']) if f.endswith('.pth')]
        assert pths == [osp.basename(rec['checkpoint'])]
    sl = recs[1]
    assert math.isfinite(sl['metrics']['cls_top1'])  # Dec-SL's own head
    assert math.isfinite(sl['references']['untrained_init']['cls_top1'])
    assert 'untrained ' in capsys.readouterr().out  # the summary lines
    assert 'cls_top1' not in recs[0]['metrics']

    # same command: both points are skipped, nothing is appended
    capsys.readouterr()
    assert sweep.main(argv) == []
    assert 'finished earlier, skipped' in capsys.readouterr().out
    assert len(_records(results)) == 2

    # another evaluation setting: a new point key, but the finished training
    # is reused (only evaluated), for the SimCLR variant only
    again = sweep.main(argv[:2] + argv[3:] +
                       ['--eval', 'knn', '--knn-k', '10'])
    assert len(again) == 1 and again[0]['trained'] is False
    assert again[0]['train_time_s'] == 0
    assert set(again[0]['metrics']) == {'knn_top1', 'knn_top5'}
    assert again[0]['train_key'] == recs[0]['train_key']
    assert again[0]['key'] != recs[0]['key']


def test_dry_run_lists_runs_without_training(fmnist_root, tmp_path, capsys):
    work = tmp_path / 'dry'
    out = sweep.main([
        '--config', SIMCLR, '--grid', 'partition=iid,dir0.02',
        'model=simclr,simsiam', '--seeds', '0,1', '--work-dir',
        str(work), '--data-root', fmnist_root, '--dry-run',
        '--cfg-options', *TINY
    ])
    assert out == []
    text = capsys.readouterr().out
    assert text.count('] todo ') == 8
    assert "'IID'" in text or '"IID"' in text
    assert '"alpha": 0.02' in text
    assert 'simsiam_r18w16_fmnist_dec.py' in text
    assert 'randomness.seed=1' in text
    assert 'tools/train.py' in text
    assert 'Planned: 8 runs, 0 finished (skipped), 8 to run' in text
    assert not work.exists()  # nothing trained, nothing written


def _plan(argv):
    return sweep.plan(sweep.parse_args(argv + ['--work-dir', '/tmp/unused']))


def test_grid_values_aliases_and_total_epochs():
    points = _plan(['--config', SIMCLR, '--grid',
                    'local_epochs=1,2,all', '--total-epochs', '4'])
    got = [(p.cfg.train_cfg.local_epochs, p.cfg.train_cfg.rounds)
           for p in points]
    assert got == [(1, 4), (2, 2), (4, 1)]
    # the cosine schedule spans the total local epochs of every split
    # (schedule_unit='local_epoch'), not the round count
    assert [p.cfg.train_cfg.schedule_unit for p in points] == \
        ['local_epoch'] * 3
    assert [p.cfg.param_scheduler[0].T_max for p in points] == [4, 4, 4]
    assert [p.cfg.param_scheduler[0].end for p in points] == [4, 4, 4]
    # a schedule by round follows the round count
    points = _plan(['--config', SIMCLR, '--grid', 'local_epochs=1,2',
                    '--total-epochs', '4', '--cfg-options',
                    'train_cfg.schedule_unit=round'])
    assert [p.cfg.param_scheduler[0].T_max for p in points] == [4, 2]

    p = _plan(['--config', SIMCLR, '--grid', 'alpha=iid',
               'participation+num_clients=0.5:20'])[0]
    part = p.cfg.train_dataloader.dataset.partition
    assert dict(part) == dict(type='IID', num_clients=20, seed=0)
    assert p.cfg.train_cfg.participation == 0.5

    p = _plan(['--config', SIMCLR, '--grid', 'partition=skew0.5'])[0]
    assert dict(p.cfg.train_dataloader.dataset.partition) == dict(
        type='Skew', num_clients=10, seed=0, ratio=0.5)
    # values with commas inside brackets are one value
    axes = sweep.parse_grid(['a.b=[1,2],3', "c=x,'y,z'"])
    assert axes[0].values == [[[1, 2]], [3]]
    assert axes[1].values == [['x'], ['y,z']]


def test_sibling_and_variant_configs():
    points = _plan(['--config', SIMCLR, '--grid', 'model=simclr,simsiam'])
    assert [p.cfg.model.type for p in points] == ['SimCLR', 'SimSiam']
    assert [p.method for p in points] == ['simclr', 'simsiam']
    points = _plan(['--variants', f'A={SIMCLR}', f'B={DEC_SL}', '--grid',
                    'method=B'])
    assert [p.cfg.model.type for p in points] == ['ImageClassifier']


def test_central_sl_is_dec_sl_on_one_client():
    (dec, ), (central, ) = _plan(['--config', DEC_SL]), _plan(
        ['--config', CENTRAL_SL])
    part = central.cfg.train_dataloader.dataset.partition
    assert dict(part) == dict(type='IID', num_clients=1, seed=0)
    assert central.cfg.train_cfg.optimizer_policy == 'keep'
    assert sweep.derived_fields(central.cfg)['num_clients'] == 1  # reference
    # everything else (model, data, optimizer, schedule) is Dec-SL's
    for key in ('model', 'optim_wrapper', 'param_scheduler'):
        assert central.cfg[key] == dec.cfg[key]
    assert central.cfg.train_cfg.rounds == dec.cfg.train_cfg.rounds
    assert central.cfg.train_dataloader.dataset.dataset == \
        dec.cfg.train_dataloader.dataset.dataset


@pytest.mark.parametrize('argv, match', [
    (['--grid', 'rounds'], 'expected AXIS=V1,V2'),
    (['--grid', 'partition=foo'], "partition value 'foo'"),
    (['--grid', 'train_cfg.nope.x=1'], "'train_cfg.nope' does not exist"),
    (['--grid', 'local_epochs=all'], 'needs --total-epochs'),
    (['--grid', 'local_epochs=3', '--total-epochs', '4'], 'not divisible'),
    (['--grid', 'model=nosuchalgo'], 'no sibling config'),
    (['--grid', 'method=nosuch'], 'neither a --variants name'),
    (['--grid', 'partition=iid', 'alpha=0.5'], 'is invalid'),
    (['--seeds', 'a'], '--seeds'),
])
def test_errors_name_the_argument(argv, match):
    with pytest.raises(sweep.SweepError, match=match):
        _plan(['--config', SIMCLR] + argv)


def test_train_commands():
    point = _plan(['--config', SIMCLR])[0]
    args = sweep.parse_args(['--work-dir', '/tmp/unused'])
    cmd = sweep.train_command(point, args, 'cfg.py')
    assert cmd[1].endswith('tools/train.py') and cmd[2] == 'cfg.py'
    assert cmd[3:] == ['--work-dir', point.work_dir]
    args = sweep.parse_args(['--work-dir', '/tmp/unused', '--launcher',
                             'pytorch', '--gpus', '4'])
    cmd = sweep.train_command(point, args, 'cfg.py')
    assert cmd[0] == 'bash' and cmd[1].endswith('tools/dist_train.sh')
    assert cmd[2:4] == ['cfg.py', '4']
    with pytest.raises(SystemExit):  # inprocess cannot launch N processes
        sweep.parse_args(['--work-dir', 'x', '--launcher', 'pytorch',
                          '--runner', 'inprocess'])


def test_no_train_evaluates_the_initial_model(fmnist_root, tmp_path):
    work = tmp_path / 'init'
    recs = sweep.main([
        '--config', SIMCLR, '--no-train', '--method-label', 'Init',
        '--work-dir', str(work), '--data-root', fmnist_root,
        '--probe-epochs', '5', '--cfg-options', *TINY
    ])
    assert len(recs) == 1
    rec = recs[0]
    assert rec['trained'] is False and rec['rounds'] == 0
    assert rec['fields']['no_train'] is True and rec['method'] == 'Init'
    assert math.isfinite(rec['metrics']['knn_top1'])
    assert math.isfinite(rec['metrics']['linear_top1'])
    assert not osp.isdir(rec['work_dir'])  # nothing trained or saved


def test_eval_loaders_are_checked_before_training(tmp_path):
    no_eval = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
    with pytest.raises(sweep.SweepError) as err:
        _plan(['--config', no_eval])
    msg = str(err.value)
    assert 'simclr_r18_fmnist_dir0.1.py' in msg
    assert 'knn_train_dataloader + knn_val_dataloader' in msg
    assert '--eval-loaders' in msg
    # loaders from another file, or no evaluation: planned
    knn = 'configs/benchmarks/_base_/datasets/fashion_mnist_knn.py'
    (point, ) = _plan(['--config', no_eval, '--eval-loaders', knn])
    train, val = sweep.eval_loaders(point, sweep.parse_args(
        ['--work-dir', str(tmp_path), '--eval-loaders', knn,
         '--eval-test-subset', '7']))
    assert (train['dataset']['split'], val['dataset']['split']) == \
        ('train', 'test')
    assert val['dataset']['subset'] == 7
    assert len(_plan(['--config', no_eval, '--eval', 'none'])) == 1
    with pytest.raises(SystemExit):  # argparse: missing file
        sweep.parse_args(['--work-dir', 'x', '--eval-loaders', 'nope.py'])


def test_partition_seed_varies_the_draw_not_the_training_seed():
    points = _plan(['--config', SIMCLR, '--grid', 'partition=dir0.1',
                    'partition_seed=0,1', '--seeds', '0,1'])
    got = [(p.cfg.train_dataloader.dataset.partition.seed,
            p.cfg.randomness.seed) for p in points]
    assert got == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert len({p.train_key for p in points}) == 4
    part = points[1].cfg.train_dataloader.dataset.partition
    # the paper's draw is kept under the new seed
    assert (part.type, part.alpha, tuple(part.size_range)) == \
        ('Dirichlet', 0.1, (0.5, 1.5))
    assert [p.grid['partition_seed'] for p in points] == ['0', '1'] * 2
    # the work dirs tell the draws apart
    assert 'partition-seed-1_seed0' in points[1].name


def test_study_size_knobs_follow_everywhere(monkeypatch):
    (p, ) = _plan(['--config', SIMCLR, '--cfg-options', 'study_width=8',
                   'study_train_subset=300', 'study_rounds=3',
                   'study_local_epochs=2'])
    cfg = p.cfg
    assert cfg.model.backbone.base_channels == 8
    assert cfg.model.backbone.stem_channels == 8
    assert cfg.model.neck.in_channels == 64  # 8 x width
    assert cfg.train_dataloader.dataset.dataset.subset == 300
    assert (cfg.train_cfg.rounds, cfg.train_cfg.local_epochs) == (3, 2)
    assert cfg.param_scheduler[0].T_max == 6  # total local epochs
    assert ('study_width', 8) in [(a.key, a.value) for a in p.overrides]
    (q, ) = _plan(['--config', SIMCLR])
    assert q.train_key != p.train_key
    assert q.cfg.model.backbone.base_channels == 16
    # nested models (FeatARC) and classifier heads follow too
    (f, ) = _plan(['--config', 'configs/study/mocov2_r18w16_fmnist_featarc.py',
                   '--cfg-options', 'study_width=8'])
    assert f.cfg.model.algorithm.backbone.base_channels == 8
    assert f.cfg.model.algorithm.neck.in_channels == 64
    (s, ) = _plan(['--config', DEC_SL, '--grid', 'study_width=8'])
    assert s.cfg.model.head.in_channels == 64
    with pytest.raises(sweep.SweepError, match='not a size knob'):
        _plan(['--config', SIMCLR, '--cfg-options', 'study_nope=1'])
    monkeypatch.setenv('STUDY_OPTIONS', 'x')  # read by no config: fine
    assert len(_plan(['--config', SIMCLR])) == 1
    monkeypatch.setenv('STUDY_WIDTH', '32')  # a size from the environment
    with pytest.raises(sweep.SweepError, match='STUDY_WIDTH set in the'):
        _plan(['--config', SIMCLR])
    # the sweep's own value wins, and the environment is left as it was
    (w, ) = _plan(['--config', SIMCLR, '--cfg-options', 'study_width=8'])
    assert w.cfg.model.backbone.base_channels == 8
    assert os.environ['STUDY_WIDTH'] == '32'


def test_records_carry_the_code_version_and_mixed_versions_warn(
        tmp_path, capsys):
    from decssl_mm.study.results import code_version, mixed_code_versions
    version = code_version()
    assert version and (len(version.split('+')[0]) == 40
                        or version.startswith('decssl_mm '))
    (point, ) = _plan(['--config', SIMCLR])
    rec = sweep.make_record(point, 'ok', metrics={})
    assert rec['code_version'] == version
    path = str(tmp_path / 'results.jsonl')
    sweep.append_result(path, rec)
    sweep.append_result(path, dict(rec, key='other-eval'))  # same code
    assert mixed_code_versions(path) == []
    sweep.append_result(path, dict(rec, key='k2', code_version='abc+dirty'))
    other = dict(rec, key='k3', train_key='t3', code_version='abc')
    sweep.append_result(path, other)  # another run: no mix
    sweep.append_result(path, dict(other, key='k4', status='failed',
                                   code_version='def'))  # not ok: ignored
    (line, ) = mixed_code_versions(path)
    assert line.startswith('WARNING: ') and point.train_key in line
    assert version in line and 'abc+dirty' in line
    # the same code at another thread count is another run
    assert isinstance(rec['threads'], int) and rec['threads'] >= 1
    sweep.append_result(path, dict(other, key='k5',
                                   threads=rec['threads'] + 1))
    lines = mixed_code_versions(path)
    assert len(lines) == 2 and any('t3' in ln and 'threads' in ln
                                   for ln in lines)
    # the sweep prints it when it opens the file
    sweep.main(['--config', SIMCLR, '--work-dir', str(tmp_path),
                '--dry-run'])
    assert 'WARNING: ' in capsys.readouterr().err


def test_code_version_is_the_one_the_sweep_started_with(
        fmnist_root, tmp_path, monkeypatch, capsys):
    from decssl_mm.study import results
    commits = iter(['a' * 40, 'b' * 40])
    monkeypatch.setattr(
        results, '_git',
        lambda *a: next(commits) if a[0] == 'rev-parse' else '')
    results.code_version.cache_clear()
    try:
        sweep.main(['--config', SIMCLR, '--work-dir', str(tmp_path / 'v'),
                    '--data-root', fmnist_root, '--dry-run',
                    '--cfg-options', *TINY])
        # read when the sweep starts: a commit made while it runs does not
        # change its records
        assert results.code_version.cache_info().currsize == 1
        assert results.code_version() == 'a' * 40
    finally:
        results.code_version.cache_clear()
