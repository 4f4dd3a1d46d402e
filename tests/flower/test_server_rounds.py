"""The server's side of a round over Flower, with sites played by a fake
transport: bad results are refused whole and logged with their node, the
round goes on; too few results stop it with every site's reason."""
import pytest
import torch

from _helpers.configs import tiny_federated_cfg
from decssl_mm.federated.messages import ClientResult
from decssl_mm.flower.federation_loop import FederationLoop

CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


class FakeSites:
    """Three enrolled sites; site 1 sends NaN, site 2 drops a key, site 0
    sends the start state + 1 (or nothing at all with ``silent``)."""

    def __init__(self, silent=()):
        self.silent = set(silent)

    def enrol(self, fingerprint):
        return {10: (0, 40), 11: (1, 40), 12: (2, 40)}

    def fit(self, round_idx, sends, fingerprint, timeout):
        out = []
        for node, task in sends:
            if node in self.silent:
                continue
            update = {k: task.start_state[k].clone()
                      for k in task.exchanged_keys}
            if task.client_id == 0:
                self.start = {k: v.clone() for k, v in update.items()}
                for k, v in update.items():
                    if v.is_floating_point():
                        v += 1
            elif task.client_id == 1:
                next(v for v in update.values()
                     if v.is_floating_point()).fill_(float('nan'))
            else:
                update.pop(next(iter(update)))
            out.append((node, ClientResult(task.client_id, round_idx,
                                           update, task.num_samples)))
        return out


def _runner(fmnist_root, tmp_path, sites, min_results=1):
    from mmengine.runner import Runner
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path),
                             rounds=1, num_clients=3)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = FederationLoop(runner, sites, cfg.train_cfg, 'fp',
                                        min_results=min_results)
    return runner


def test_bad_results_are_refused_and_the_round_goes_on(fmnist_root,
                                                        tmp_path):
    sites = FakeSites()
    runner = _runner(fmnist_root, tmp_path, sites)
    runner.train()
    before = sites.start
    got = runner.train_loop.global_state
    key = next(k for k, v in got.items() if v.is_floating_point())
    assert torch.allclose(got[key], before[key] + 1)


def test_too_few_results_name_every_site(fmnist_root, tmp_path):
    runner = _runner(fmnist_root, tmp_path, FakeSites(silent={10}))
    with pytest.raises(RuntimeError) as e:
        runner.train()
    msg = str(e.value)
    assert 'site 0 (node 10): no reply within the round timeout' in msg
    assert 'site 1 (node 11): refused' in msg
    assert 'site 2 (node 12): refused' in msg


class OnlineSites:
    """Three sites that answer every task well (start state + 1 + site id),
    as long as their node is online; ``offline[r]`` are the nodes the
    SuperLink holds offline at round ``r``. Records the tasks sent."""

    def __init__(self, offline=None):
        self.offline = offline or {}
        self.sent = {}
        self._round = 0

    def enrol(self, fingerprint):
        return {10: (0, 40), 11: (1, 40), 12: (2, 40)}

    def online_nodes(self):
        return {10, 11, 12} - set(self.offline.get(self._round, ()))

    def fit(self, round_idx, sends, fingerprint, timeout):
        self.sent[round_idx] = [(node, task.client_id) for node, task in sends]
        self._round = round_idx + 1
        out = []
        for node, task in sends:
            update = {k: task.start_state[k].clone()
                      for k in task.exchanged_keys}
            for v in update.values():
                if v.is_floating_point():
                    v += 1 + task.client_id
            out.append((node, ClientResult(task.client_id, round_idx,
                                           update, task.num_samples)))
        return out


def _logged(monkeypatch):
    import decssl_mm.flower.federation_loop as fl
    lines = []
    monkeypatch.setattr(fl, 'print_log',
                        lambda msg, *a, **k: lines.append(str(msg)))
    return lines


def _online_runner(fmnist_root, tmp_path, sites, rounds, min_results):
    from mmengine.runner import Runner
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path),
                             rounds=rounds, num_clients=3)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = FederationLoop(runner, sites, cfg.train_cfg, 'fp',
                                        min_results=min_results)
    return runner


def test_offline_site_gets_no_task_and_the_round_goes_on(
        fmnist_root, tmp_path, monkeypatch):
    lines = _logged(monkeypatch)
    every = OnlineSites()
    _online_runner(fmnist_root, tmp_path / 'all', every, 2, 2).train()
    sites = OnlineSites(offline={1: {12}})
    runner = _online_runner(fmnist_root, tmp_path / 'one_off', sites, 2, 2)
    runner.train()
    # the sampling is the in-process one; the offline site is not admitted
    assert sites.sent[0] == every.sent[0]
    assert sites.sent[1] == [s for s in every.sent[1] if s[0] != 12]
    assert any('Round 2/2: site 2 (node 12) left out, no task sent' in line
               and 'not connected' in line for line in lines)
    assert 'Round 2/2: 2 of 3 sites admitted.' in lines
    assert (tmp_path / 'one_off' / 'epoch_2.pth').is_file()


def test_too_few_online_stops_before_sending(fmnist_root, tmp_path,
                                             monkeypatch):
    _logged(monkeypatch)
    sites = OnlineSites(offline={0: {11, 12}})
    runner = _online_runner(fmnist_root, tmp_path, sites, 1, 2)
    with pytest.raises(RuntimeError) as e:
        runner.train()
    assert sites.sent == {}  # nothing sent, no round timeout waited
    msg = str(e.value)
    assert msg.startswith('Round 1/1: 1 site(s) online, fewer than '
                          'min-results=2')
    assert 'site 1 (node 11): its node is not connected' in msg
    assert 'site 2 (node 12): its node is not connected' in msg


class _SuperLinkGrid:
    """A grid that sets message ids on push, as Flower's does, and answers
    for node 12 as the SuperLink does for a node it holds offline (source:
    the SuperLink, node 1)."""

    def get_node_ids(self):
        return [10, 11]

    def send_and_receive(self, messages, *, timeout=None):
        from flwr.app import Error, Message
        replies = []
        for msg in messages:
            msg.metadata.__dict__['_message_id'] = msg.object_id
            reply = Message(Error(5, 'Error: Node Unavailable'), reply_to=msg)
            reply.metadata.__dict__['_src_node_id'] = 1
            replies.append(reply)
        return replies


def test_superlink_answer_for_an_offline_node_names_that_node():
    pytest.importorskip('flwr')
    from flwr.supercore.task_identity import TaskIdentity

    from decssl_mm.federated.messages import ClientTask
    from decssl_mm.flower.grid_transport import NODE_GONE, GridTransport
    TaskIdentity.run_id, TaskIdentity.node_id = 1, 0
    TaskIdentity.task_id = 1
    transport = GridTransport(_SuperLinkGrid())
    assert transport.online_nodes() == {10, 11}
    task = ClientTask(2, 0, {'w': torch.zeros(2)}, ('w',), 40, 0)
    assert transport.fit(0, [(12, task)], 'fp', 5) == [(12, NODE_GONE)]


def test_a_server_with_a_memo_but_no_round_across_sites_is_refused(
        fmnist_root, tmp_path):
    from mmengine.runner import Runner

    from decssl_mm.federated.servers import FedAvgServer
    from decssl_mm.registry import SERVERS

    @SERVERS.register_module(name='_MemoOnlyServer', force=True)
    class _MemoOnlyServer(FedAvgServer):
        memo_key = 'mine'

    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path), rounds=1,
                             num_clients=3)
    cfg.train_cfg.server = dict(type='_MemoOnlyServer')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'train_cfg.server: _MemoOnlyServer '
                       r'keeps a memo per client and has no round across'):
        FederationLoop(runner, FakeSites(), cfg.train_cfg, 'fp')
