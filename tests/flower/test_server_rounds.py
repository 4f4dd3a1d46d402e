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
