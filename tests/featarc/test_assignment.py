"""FeatARC's assignment and cluster-wise aggregation on constructed cases.

The clustered server's own methods run on a server whose loop, dataset
and model are tiny stand-ins (no Runner, no ResNet), so that the expected
results can be written down by hand.
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

from decssl_mm.federated.aggregators import FedAvg
from decssl_mm.federated.client_state import DiskClientStateStore
from decssl_mm.federated.messages import ClientResult, RunContext
from decssl_mm.federated.servers import ClusteredServer


# ----------------------------------------------------------------- stand-ins
def stripes(group: int, n: int, seed: int):
    """Group 0: vertical stripes, group 1: horizontal; label = frequency."""
    g = torch.Generator().manual_seed(seed)
    freq = torch.randint(1, 4, (n, ), generator=g)
    phase = torch.rand(n, generator=g) * 6.28
    wave = torch.sin(freq[:, None] * torch.arange(8.)[None] * 0.8 +
                     phase[:, None])
    img = wave[:, None, :].expand(n, 8, 8) if group == 0 else \
        wave[:, :, None].expand(n, 8, 8)
    x = img[:, None].expand(n, 3, 8, 8) + 0.3 * torch.randn(
        n, 3, 8, 8, generator=g)
    return x.contiguous(), freq - 1


def tiny_backbone(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())


def fit(backbone: nn.Module, x, y, steps: int, seed: int) -> nn.Module:
    """Train a backbone (with a throw-away linear head) on one group."""
    torch.manual_seed(seed)
    head = nn.Linear(16, 3)
    opt = torch.optim.Adam(
        list(backbone.parameters()) + list(head.parameters()), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        logits = head(backbone(x).mean((2, 3)))
        nn.functional.cross_entropy(logits, y).backward()
        opt.step()
    return backbone


class _Preprocessor(nn.Module):

    def forward(self, data, training=False):
        return {'inputs': data['inputs']}


class _Dataset:
    """Samples of clients laid end to end: client k holds block k."""

    def __init__(self, blocks):
        self.images = torch.cat(blocks)
        sizes = [len(b) for b in blocks]
        starts = np.cumsum([0] + sizes)
        self.blocks = [np.arange(starts[i], starts[i + 1])
                       for i in range(len(blocks))]

    def client_indices(self, k):
        return self.blocks[k]

    def get_data_info(self, idx):
        return {'img': self.images[idx]}


def _with_prefix(module: nn.Module) -> dict:
    return {f'backbone.{k}': v.detach().clone()
            for k, v in module.state_dict().items()}


def bare_loop(tmp_path, dataset=None, backbone=None, clusters=(),
              client_sizes=(), export_rule='most_samples'):
    """A ClusteredServer with only what the tested methods read."""
    loop = ClusteredServer.__new__(ClusteredServer)
    model = nn.Module()
    model.backbone = backbone or nn.Identity()
    model.data_preprocessor = _Preprocessor()
    store = DiskClientStateStore()
    store.setup(str(tmp_path))
    loop.ctx = RunContext(model, dataset,
                          np.asarray(client_sizes, np.int64), 1, 0,
                          str(tmp_path))
    loop.store = store  # the tests keep client features here
    loop.num_clusters = len(clusters)
    loop.clusters = [dict(c) for c in clusters]
    loop.feat_batch_size = 16
    loop.assign_max_samples = None
    loop._eval_pipeline = lambda info: {'inputs': info['img']}
    loop._probes, loop._probes_fresh = [], False
    loop.assignment = np.full(len(client_sizes), -1, np.int64)
    loop.export_rule = export_rule
    loop.round_assignment = {}
    loop.chosen = 0
    loop._assign_bytes = 0
    return loop


# ---------------------------------------------------------------- assignment
@pytest.fixture(scope='module')
def two_groups():
    """Two cluster models, each trained on one data group, and 4 clients.

    Clients 0, 2 hold group-0 data, clients 1, 3 group-1 data; each client's
    local model is its group's cluster model trained further on the
    client's own samples (as after a FeatARC round).
    """
    init = tiny_backbone(0)
    xa, ya = stripes(0, 64, 1)
    xb, yb = stripes(1, 64, 2)
    cluster_a = fit(copy.deepcopy(init), xa, ya, steps=60, seed=1)
    cluster_b = fit(copy.deepcopy(init), xb, yb, steps=60, seed=2)
    blocks, locals_ = [], []
    for k in range(4):
        x, y = stripes(k % 2, 32, 10 + k)
        blocks.append(x)
        start = (cluster_a, cluster_b)[k % 2]
        locals_.append(fit(copy.deepcopy(start), x, y, steps=20, seed=20 + k))
    return init, cluster_a, cluster_b, _Dataset(blocks), locals_


def _store_local_features(loop, locals_):
    for k, local in enumerate(locals_):
        feats = loop.eval_features([local], loop.assign_indices(k))[0]
        loop.store.save(k, {'featarc': {'feats': feats, 'cluster': k % 2}},
                        0)


def _memo(loop, k):
    """Client ``k``'s ``'featarc'`` entry, as the loop hands it over."""
    return (loop.store.load(k) or {}).get('featarc')


def test_assignment_picks_the_cluster_of_the_clients_data(
        tmp_path, two_groups):
    init, cluster_a, cluster_b, dataset, locals_ = two_groups
    loop = bare_loop(tmp_path, dataset, copy.deepcopy(init),
                     [_with_prefix(cluster_a), _with_prefix(cluster_b)],
                     client_sizes=[32] * 4)
    _store_local_features(loop, locals_)
    for k in range(4):
        cluster, scores = loop.assign_client(k, _memo(loop, k))
        assert cluster == k % 2, (k, scores)
        assert scores[k % 2] > scores[1 - k % 2] + 0.1, (k, scores)
        # the score is the mean inner product of unit features
        assert all(-1 <= s <= 1 for s in scores)
    # the cluster order does not matter
    loop.clusters = loop.clusters[::-1]
    loop._probes_fresh = False
    assert [loop.assign_client(k, _memo(loop, k))[0]
            for k in range(4)] == [1, 0, 1, 0]


def test_first_time_clients_are_round_robin(tmp_path, two_groups):
    init, cluster_a, cluster_b, dataset, _ = two_groups
    loop = bare_loop(tmp_path, dataset, copy.deepcopy(init),
                     [_with_prefix(cluster_a), _with_prefix(cluster_b)],
                     client_sizes=[32] * 4)
    assert [loop.assign_client(k, _memo(loop, k)) for k in range(4)] == [
        (0, None), (1, None), (0, None), (1, None)]


def test_eval_features_restore_training_mode(tmp_path, two_groups):
    init, _, _, dataset, _ = two_groups
    bb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    bb.train()
    loop = bare_loop(tmp_path, dataset, bb, [], client_sizes=[32] * 4)
    stats = bb[1].running_mean.clone()
    feats = loop.eval_features([bb], loop.assign_indices(1))[0]
    assert feats.shape == (32, 4) and bb.training
    assert torch.equal(stats, bb[1].running_mean)  # eval mode: untouched
    assert torch.allclose(feats.norm(dim=1), torch.ones(32), atol=1e-5)


def test_assign_subset_is_fixed(tmp_path, two_groups):
    _, _, _, dataset, _ = two_groups
    loop = bare_loop(tmp_path, dataset, client_sizes=[32] * 4)
    loop.assign_max_samples = 10
    a, b = loop.assign_indices(2), loop.assign_indices(2)
    assert len(a) == 10 and np.array_equal(a, b)
    assert set(a) <= set(dataset.client_indices(2))


# ------------------------------------------------------ cluster-wise average
def _state(value: float, steps: int):
    return {'backbone.w': torch.full((2, 3), float(value)),
            'head.b': torch.tensor([value, -value]),
            'bn.num_batches_tracked': torch.tensor(steps)}


def _cluster_round(loop, updates, assignment):
    keys = list(loop.clusters[0])
    loop.aggregators = [FedAvg(), FedAvg()]
    for agg, state in zip(loop.aggregators, loop.clusters):
        agg.select_keys(keys)
        agg.begin_round(state)
    loop.round_assignment = dict(assignment)
    for k, c in assignment.items():
        loop.assignment[k] = c
    loop.global_state = {k: v.clone() for k, v in loop.clusters[0].items()}
    for k in [2, 0, 3, 1]:  # shuffled order
        loop.add(ClientResult(k, 0, updates[k],
                              int(loop.ctx.client_sizes[k]),
                              extras={'features': torch.zeros(0, 0)}))
    loop.finish_round(0)


def test_clusterwise_fedavg_uses_exactly_its_clients(tmp_path):
    sizes = [10, 30, 20, 40]
    loop = bare_loop(tmp_path, clusters=[_state(0., 0), _state(100., 0)],
                     client_sizes=sizes)
    updates = {0: _state(1., 5), 1: _state(2., 7), 2: _state(3., 9),
               3: _state(4., 3)}
    _cluster_round(loop, updates, {0: 1, 1: 0, 2: 1, 3: 0})
    # cluster 0 <- clients 1 and 3, cluster 1 <- clients 0 and 2
    want0 = (30 * 2. + 40 * 4.) / 70
    want1 = (10 * 1. + 20 * 3.) / 30
    c0, c1 = loop.clusters
    assert torch.allclose(c0['backbone.w'], torch.full((2, 3), want0))
    assert torch.allclose(c1['backbone.w'], torch.full((2, 3), want1))
    assert torch.allclose(c0['head.b'], torch.tensor([want0, -want0]))
    assert int(c0['bn.num_batches_tracked']) == 7  # max over 1 and 3
    assert int(c1['bn.num_batches_tracked']) == 9  # max over 0 and 2
    # exported: the cluster with the most samples (70 > 30)
    assert loop.chosen == 0 and loop.choose_cluster() == 0
    for k, v in loop.global_state.items():
        assert torch.equal(v, c0[k]), k


def test_cluster_without_clients_keeps_its_model(tmp_path):
    sizes = [10, 30, 20, 40]
    loop = bare_loop(tmp_path, clusters=[_state(0., 0), _state(100., 4)],
                     client_sizes=sizes)
    updates = {k: _state(float(k + 1), 1) for k in range(4)}
    _cluster_round(loop, updates, {k: 0 for k in range(4)})
    want = sum(s * (k + 1.) for k, s in enumerate(sizes)) / sum(sizes)
    assert torch.allclose(loop.clusters[0]['backbone.w'],
                          torch.full((2, 3), want))
    assert torch.equal(loop.clusters[1]['backbone.w'],
                       torch.full((2, 3), 100.))
    assert int(loop.clusters[1]['bn.num_batches_tracked']) == 4


def test_export_rules(tmp_path):
    loop = bare_loop(tmp_path, clusters=[{}, {}], client_sizes=[50, 1, 1, 1])
    loop.assignment = np.array([0, 1, 1, -1])
    assert loop.choose_cluster() == 0  # 50 samples vs 2
    loop.export_rule = 'most_clients'
    assert loop.choose_cluster() == 1  # 2 clients vs 1
    loop.assignment = np.array([0, 1, -1, -1])
    assert loop.choose_cluster() == 0  # tie: smaller index


def test_a_site_draws_the_same_subset_from_its_local_indices():
    from decssl_mm.federated.servers.cluster_maths import assignment_subset
    global_idx = np.array([3, 8, 9, 15, 22, 40, 41, 57, 60, 77])
    local_idx = np.arange(global_idx.size)  # the site's own order
    for seed, client, m in ((0, 2, 4), (7, 5, 9), (1, 1, None), (3, 0, 20)):
        g = assignment_subset(global_idx, seed, client, m)
        loc = assignment_subset(local_idx, seed, client, m)
        assert g.tolist() == global_idx[loc].tolist()
        assert len(g) == min(m or 99, 10)
    assert assignment_subset(global_idx, 0, 2, 4).tolist() != \
        assignment_subset(global_idx, 0, 3, 4).tolist()


def test_assignment_from_scores():
    from decssl_mm.federated.servers.cluster_maths import assign_from_scores
    assert assign_from_scores(5, [0.1, 0.7, 0.7], False, 0, 3) == 1  # tie
    assert assign_from_scores(5, None, True, 0, 3) == 0  # stale: previous
    assert assign_from_scores(5, None, True, -1, 3) == 2  # never assigned
    assert assign_from_scores(5, None, False, 0, 3) == 2  # no features
