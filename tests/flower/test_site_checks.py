"""Bad input at a site gets an error naming the node and the key or path;
the core never imports flwr."""
import os
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from _helpers.configs import ROOT, tiny_federated_cfg
from decssl_mm.flower.enrolment import assign_sites
from decssl_mm.flower.fingerprint import config_fingerprint
from decssl_mm.flower.node_config import parse_node_config
from decssl_mm.flower.site import Site

CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def test_core_imports_without_flwr():
    code = ('import sys, decssl_mm, decssl_mm.flower.site, '
            'decssl_mm.flower.federation_loop; '
            "assert 'flwr' not in sys.modules, 'flwr imported'")
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)


def test_unknown_node_config_key_names_node_and_key(tmp_path):
    with pytest.raises(KeyError, match=r"node 7.*'data_root'"):
        parse_node_config({'data_root': str(tmp_path)}, 7)


def test_missing_data_root_names_node_and_path(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match=f'node 3.*{missing}'):
        parse_node_config({'data-root': missing}, 3)
    with pytest.raises(ValueError, match="node 3.*'data-root'"):
        parse_node_config({'site-id': 1}, 3)
    with pytest.raises(ValueError, match='node 3: site-id'):
        parse_node_config({'data-root': str(tmp_path), 'site-id': -1}, 3)


def _site(fmnist_root, tmp_path, data_root):
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path / 'w'))
    node = parse_node_config({'data-root': data_root}, 5)
    return cfg, Site(cfg, node)


def test_other_config_is_refused_naming_the_site(fmnist_root, tmp_path):
    cfg, site = _site(fmnist_root, tmp_path, fmnist_root)
    site.check_fingerprint(config_fingerprint(cfg))
    other = Config(cfg.to_dict())
    other.optim_wrapper.optimizer.lr = 123.0
    with pytest.raises(ValueError, match='node 5.*config differs'):
        site.check_fingerprint(config_fingerprint(other))


def test_paths_and_workers_do_not_change_the_fingerprint(fmnist_root,
                                                          tmp_path):
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path / 'a'))
    other = tiny_federated_cfg(CONFIG, '/elsewhere', str(tmp_path / 'b'),
                               num_workers=2)
    assert config_fingerprint(cfg) == config_fingerprint(other)


def test_site_without_images_is_refused(fmnist_root, tmp_path):
    from decssl_mm.flower.site_split import write_idx
    empty = tmp_path / 'empty'
    os.makedirs(empty)
    write_idx(str(empty / 'train-images-idx3-ubyte.gz'),
              np.zeros((0, 28, 28), np.uint8))
    write_idx(str(empty / 'train-labels-idx1-ubyte.gz'),
              np.zeros((0, ), np.uint8))
    _, site = _site(fmnist_root, tmp_path, str(empty))
    with pytest.raises(ValueError, match='node 5: no training images'):
        site.num_samples()


def test_site_ids_must_cover_the_sites():
    assert assign_sites({9: (None, 5), 4: (None, 3)})[0] == {0: 4, 1: 9}
    node_of, sizes = assign_sites({9: (0, 5), 4: (1, 3)})
    assert node_of == {0: 9, 1: 4} and sizes.tolist() == [5, 3]
    with pytest.raises(ValueError, match='set it at every site'):
        assign_sites({9: (0, 5), 4: (None, 3)})
    with pytest.raises(ValueError, match='0..1'):
        assign_sites({9: (0, 5), 4: (2, 3)})
    with pytest.raises(ValueError, match='No site'):
        assign_sites({})


def test_site_log_counts_the_tasks_iterations(fmnist_root, tmp_path):
    import glob
    from decssl_mm.federated.messages import ClientTask
    from decssl_mm.registry import MODELS
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path / 'w'),
                             local_iters=3)
    cfg.log_level = 'INFO'
    site = Site(cfg, parse_node_config(
        {'data-root': fmnist_root, 'state-dir': str(tmp_path / 's')}, 5))
    state = MODELS.build(cfg.model).state_dict()
    task = ClientTask(client_id=0, round_idx=0, start_state=state,
                      exchanged_keys=tuple(state), num_samples=10, seed=0)
    site.fit(task)
    logs = glob.glob(str(tmp_path / '**' / '*.log'), recursive=True)
    text = ''.join(open(p).read() for p in logs)
    # the logger shows the task's own length and count, not [i/0]
    assert 'Epoch(train) [1][3/3]' in text, text[-2000:]
    assert '/0]' not in text
