"""FeatARC across sites: a round of two messages per site (the cluster
backbones out, the site's scores back; then the task of its cluster) gives
the in-process rounds bit for bit, with every image and feature kept at
its site."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from _helpers.baseline_configs import tiny_cfg

pytest.importorskip('flwr')

from _helpers.flower_grid import LocalGrid, local_sites  # noqa: E402
from decssl_mm.flower.client_app import app as client_app  # noqa: E402
from decssl_mm.flower.grid_transport import SCORE, GridTransport  # noqa
from decssl_mm.flower.server_app import server_runner  # noqa: E402

CONFIG = 'configs/featarc/simclr_r18_fmnist_dir0.1.py'


def _tiny(fmnist_root, work_dir, mode, max_samples=None):
    cfg = tiny_cfg(CONFIG, fmnist_root, str(work_dir), rounds=3,
                   num_clients=3, local_iters=2)
    cfg.randomness = dict(seed=7)
    cfg.train_cfg.server.mode = mode
    cfg.train_cfg.server.assign_max_samples = max_samples
    return cfg


class _Recording:
    """A grid that keeps the messages it carried (and can drop one site's
    score answer)."""

    def __init__(self, grid, fail_score_of=None):
        self.grid, self.sent = grid, []
        self.fail_score_of = fail_score_of

    def get_node_ids(self):
        return self.grid.get_node_ids()

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        self.sent += messages
        if self.fail_score_of is not None:
            messages = [m for m in messages
                        if not (m.metadata.message_type == SCORE and
                                m.metadata.dst_node_id == self.fail_score_of)]
        return self.grid.send_and_receive(messages, timeout=timeout)


def _flower(cfg, tmp_path, fail_score_of=None):
    path, nodes = local_sites(cfg, tmp_path)
    grid = _Recording(LocalGrid(client_app, nodes, {'config': path}),
                      fail_score_of)
    runner = server_runner({'config': path, 'resume': False,
                            'work-dir': str(tmp_path / 'server')},
                           GridTransport(grid))
    runner.train()
    return runner, grid


@pytest.mark.parametrize('mode,max_samples', [('paper', None), ('ours', 12)])
def test_featarc_across_sites_equals_in_process(fmnist_root, tmp_path, mode,
                                                max_samples):
    ref = Runner.from_cfg(_tiny(fmnist_root, tmp_path / 'ref', mode,
                                max_samples))
    ref.train()
    runner, grid = _flower(_tiny(fmnist_root, tmp_path / 'x', mode,
                                 max_samples), tmp_path)
    want, got = ref.train_loop.server, runner.train_loop.server
    # rounds 2 and 3 were assigned by scores the sites computed, the same
    assert set(got.round_scores) == {0, 1, 2}
    assert all(s is not None for s in got.round_scores.values())
    assert got.round_scores == want.round_scores
    assert got.assignment.tolist() == want.assignment.tolist()
    assert got.chosen == want.chosen
    for c, (g, w) in enumerate(zip(got.clusters, want.clusters)):
        for k in w:
            assert torch.equal(g[k], w[k]), (c, k)
    for k, v in ref.train_loop.global_state.items():
        assert torch.equal(runner.train_loop.global_state[k], v), k
    # what travelled: no images, no features; scores asked from round 2 on
    scores = [m for m in grid.sent if m.metadata.message_type == SCORE]
    assert sorted(m.metadata.group_id for m in scores) == \
        ['1.score'] * 3 + ['2.score'] * 3
    for m in grid.sent:
        assert not any('features' in name or 'alignment' in name
                       for name in m.content.array_records), name
    # each site kept its features (one per probed sample) on its disk
    for k in range(3):
        state = torch.load(sorted(glob.glob(osp.join(
            str(tmp_path), f'state{k}', 'client_state_r*.pth')))[-1],
            map_location='cpu', weights_only=False)
        feats = state['featarc']['feats']
        assert feats.shape[0] == (max_samples or feats.shape[0])
        assert state['featarc']['cluster'] == got.assignment[k]
    ckpt = torch.load(osp.join(str(tmp_path), 'server', 'epoch_3.pth'),
                      map_location='cpu', weights_only=False)
    assert len(ckpt['federated']['extra']['clusters']) == 2


def test_a_site_that_gives_no_scores_is_left_out(fmnist_root, tmp_path,
                                                  capsys):
    runner, _ = _flower(_tiny(fmnist_root, tmp_path / 'x', 'ours'),
                        tmp_path, fail_score_of=101)
    server = runner.train_loop.server
    # rounds 2 and 3 ran without site 1: not assigned, not aggregated
    assert set(server.round_assignment) == {0, 2}
    assert runner.train_loop.epoch == 3
    out = capsys.readouterr().out
    for r in (2, 3):
        assert (f'Round {r}/3: site 1 (node 101) left out: no cluster '
                'scores: no reply') in out
