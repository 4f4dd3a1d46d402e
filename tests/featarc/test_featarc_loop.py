"""FeatARC through the real mmengine Runner."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from _helpers.baseline_configs import tiny_cfg
from decssl_mm.federated.messages import RunContext

ALGORITHMS = ['simclr', 'mocov2', 'byol', 'simsiam', 'mocov3', 'barlowtwins',
              'densecl', 'swav']


def _cfg(algo, work_dir, fmnist_root, **kw):
    kw.setdefault('rounds', 1)
    kw.setdefault('num_clients', 4)
    kw.setdefault('local_iters', 1)
    cfg = tiny_cfg(f'configs/featarc/{algo}_r18_fmnist_dir0.1.py',
                   fmnist_root, str(work_dir), **kw)
    if algo in ('mocov2', 'densecl'):
        cfg.model.algorithm.queue_len = 32
    return cfg


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.parametrize('algo', ALGORITHMS)
def test_every_featarc_config_runs_one_round(algo, fmnist_root, tmp_path):
    runner = Runner.from_cfg(_cfg(algo, tmp_path, fmnist_root))
    runner.train()
    assert runner.train_loop.iter == 4
    loop = runner.train_loop.server
    hub = runner.message_hub
    for key in ('train/loss', 'train/loss_align'):
        assert np.isfinite(hub.get_scalar(key).current()), key
    # first round: round-robin
    assert loop.assignment.tolist() == [0, 1, 0, 1]
    ckpt = _load(osp.join(str(tmp_path), 'epoch_1.pth'))
    extra = ckpt['federated']['extra']
    assert len(extra['clusters']) == 2 and extra['chosen'] == loop.chosen
    chosen = extra['clusters'][extra['chosen']]
    # the checkpoint's model is the chosen cluster, keys as the algorithm's
    assert list(ckpt['state_dict']) == list(chosen)
    for k, v in ckpt['state_dict'].items():
        assert torch.equal(v, chosen[k]), k
    assert all(not k.startswith('_reference') for k in ckpt['state_dict'])
    # both clusters moved away from the shared start (2 clients each)
    assert not torch.equal(extra['clusters'][0]['backbone.conv1.weight'],
                           extra['clusters'][1]['backbone.conv1.weight'])
    # client states hold the local model's features for the next round
    st = _load(sorted(glob.glob(osp.join(str(tmp_path), 'client_states',
                                         '*.pth')))[0])
    assert st['featarc']['feats'].shape[1] == 64


def test_assignment_follows_the_scores(fmnist_root, tmp_path):
    runner = Runner.from_cfg(_cfg('simclr', tmp_path, fmnist_root, rounds=2))
    runner.train()
    loop = runner.train_loop.server
    assert set(loop.round_scores) == {0, 1, 2, 3}
    for k, scores in loop.round_scores.items():
        assert scores is not None and len(scores) == 2
        assert loop.round_assignment[k] == int(np.argmax(scores))
    sizes = runner.train_loop.client_sizes
    totals = np.bincount(loop.assignment, weights=sizes, minlength=2)
    assert loop.chosen == int(np.argmax(totals))
    hub = runner.message_hub
    assert hub.get_scalar('train/comm/featarc_assign_bytes_down').current() \
        > 0


def test_export_of_a_cluster(fmnist_root, tmp_path):
    from decssl_mm.evaluation.export import extract_backbone_state
    runner = Runner.from_cfg(_cfg('simclr', tmp_path, fmnist_root))
    runner.train()
    path = osp.join(str(tmp_path), 'epoch_1.pth')
    loop = runner.train_loop.server
    for c in range(2):
        state, _ = extract_backbone_state(path, c)
        want = loop.clusters[c]['backbone.conv1.weight']
        assert torch.equal(state['conv1.weight'], want.cpu())


def test_resume_equals_uninterrupted(fmnist_root, tmp_path):
    def cfg_for(d, rounds):
        c = _cfg('simclr', d, fmnist_root, rounds=rounds, num_clients=3,
                 extra={'train_cfg.participation': 0.67})
        c.randomness = dict(seed=1, deterministic=True)
        c.param_scheduler = [dict(type='CosineAnnealingLR', T_max=3,
                                  by_epoch=True, begin=0, end=3)]
        return c

    straight = Runner.from_cfg(cfg_for(tmp_path / 'a', 3))
    straight.train()
    Runner.from_cfg(cfg_for(tmp_path / 'b', 2)).train()
    cfg = cfg_for(tmp_path / 'b', 3)
    cfg.resume = True
    cfg.load_from = str(tmp_path / 'b' / 'epoch_2.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    a, b = straight.train_loop.server, resumed.train_loop.server
    assert a.assignment.tolist() == b.assignment.tolist()
    assert a.chosen == b.chosen
    for ca, cb in zip(a.clusters, b.clusters):
        for k in ca:
            assert torch.allclose(ca[k].double(), cb[k].double(),
                                  atol=1e-6), k


@pytest.mark.parametrize('extra,match', [
    ({'train_cfg.server.num_clusters': 0}, 'train_cfg.server.num_clusters'),
    ({'train_cfg.server.eval_pipeline': None},
     'train_cfg.server.eval_pipeline'),
    ({'train_cfg.server.export_rule': 'best_test'},
     'train_cfg.server.export_rule'),
    ({'train_cfg.server.assign_max_samples': 0},
     'train_cfg.server.assign_max_samples'),
    ({'train_cfg.server.mode': 'best'}, 'train_cfg.server.mode'),
])
def test_bad_featarc_settings(extra, match, fmnist_root, tmp_path):
    cfg = _cfg('simclr', tmp_path, fmnist_root, extra=extra)
    with pytest.raises(ValueError, match=match):
        Runner.from_cfg(cfg).train()


def test_featarc_loop_type_is_refused_with_the_server_form(fmnist_root,
                                                          tmp_path):
    from decssl_mm.utils.config_check import check_train_cfg
    cfg = _cfg('simclr', tmp_path, fmnist_root)
    server = dict(cfg.train_cfg.pop('server'))
    server.pop('type')
    cfg.train_cfg.update(server, type='FeatARCTrainLoop')
    with pytest.raises(ValueError, match=r"train_cfg\.type.*"
                       r"server=dict\(type='ClusteredServer'"):
        check_train_cfg(cfg)


def test_paper_mode_starts_clusters_independently(fmnist_root, tmp_path):
    runner = Runner.from_cfg(_cfg('simclr', tmp_path, fmnist_root))
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    server = runner.train_loop.server
    assert server.mode == 'paper'
    loop = runner.train_loop
    server.setup(RunContext(loop.model, loop.dataset, loop.client_sizes,
                            loop.clients_per_round, loop.seed,
                            runner.work_dir))
    a, b = server.clusters
    differ = [k for k in a if a[k].is_floating_point()
              and a[k].numel() > 1 and not torch.equal(a[k], b[k])]
    assert 'backbone.conv1.weight' in differ
    assert any(k.startswith('neck.') for k in differ)
    assert torch.equal(a['backbone.conv1.weight'],
                       server.global_state['backbone.conv1.weight'])
