"""A real federation on 127.0.0.1, as a deployment runs it: a SuperLink
with TLS (certificates made for the test) and ``--enable-supernode-auth``;
2 SuperNodes whose keys were registered with ``flwr supernode register``
run 2 rounds of a tiny config through ``flwr run``, and a third SuperNode
with a key nobody registered is refused. Bounded in time, every process
stopped by PID even when the test fails. (The insecure loopback mode runs
in test_node_dies.py.)

Why the refusal is checked as it is: a SuperNode activates itself once,
when it starts; the SuperLink looks its public key up among the registered
ones and answers "no SuperNode found", and the SuperNode stops with
Flower's connection error (its log: ``Exit Code: 305``; the process exits
non-zero). This does not depend on timing (the
node never gets a node id, whenever it tries), so the test starts it next
to the run to save time, waits for its exit (bounded), reads the reason in
both logs, and checks in the SuperLink's log that exactly the two
registered node ids were activated and answered the run (the SuperLink
logs each activation and each reply).
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _helpers.configs import tiny_federated_cfg

pytest.importorskip('flwr')
pytest.importorskip('cryptography')

from decssl_mm.flower.loopback import LocalFederation  # noqa: E402
from decssl_mm.flower.site_split import split_fmnist_sites  # noqa: E402

CONFIG = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'
#: Bounds: the refused node's exit, and the whole 2-round run (each
#: message starts a ClientApp process that imports torch and mmengine:
#: minutes on a loaded machine).
REFUSAL_TIMEOUT = 180
RUN_TIMEOUT = 540
#: Flower's exit code for "failed to initialise the connection to the
#: SuperLink" (``flwr.supercore.exit.ExitCode.SUPERNODE_CONNECTION_ERROR``).
CONNECTION_ERROR = 305


def _wait(proc, timeout: float, what: str) -> int:
    t0 = time.time()
    while proc.poll() is None:
        if time.time() - t0 > timeout:
            pytest.fail(f'{what} did not finish within {timeout} s')
        time.sleep(1)
    return proc.returncode


def _registered_id(cli_output: str) -> int:
    found = re.search(r'SuperNode (\d+) registered', cli_output)
    assert found, cli_output
    return int(found.group(1))


def _link_nodes(link_log: str, event: str) -> set:
    """Node ids of the SuperLink's log lines ``<event> node_id=<id>``."""
    return {int(n) for n in re.findall(re.escape(event) + r' node_id=(\d+)',
                                       link_log)}


def test_made_files_are_what_flower_reads(tmp_path):
    """The CA signed the server certificate for 127.0.0.1; the node keys
    load with the loaders Flower's SuperNode and CLI use."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import \
        load_ssh_private_key
    from flwr.cli.supernode.register import try_load_public_key

    from decssl_mm.flower.certs import make_node_keys, make_tls_files
    tls = make_tls_files(str(tmp_path / 'certs'))
    with open(tls['ca'], 'rb') as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(tls['certfile'], 'rb') as f:
        server = x509.load_pem_x509_certificate(f.read())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert '127.0.0.1' in [str(ip) for ip in names.get_values_for_type(
        x509.IPAddress)]
    assert 'localhost' in names.get_values_for_type(x509.DNSName)
    private, public = make_node_keys(str(tmp_path / 'keys' / 'site0.key'))
    with open(private, 'rb') as f:
        key = load_ssh_private_key(f.read(), None)
    assert key.curve.name == 'secp384r1'
    assert try_load_public_key(Path(public)).startswith(b'-----BEGIN PUBLIC')
    assert oct(os.stat(private).st_mode & 0o777) == '0o600'


def test_registered_sites_pretrain_and_unregistered_refused(fmnist_root,
                                                            tmp_path):
    cfg = tiny_federated_cfg(CONFIG, fmnist_root, str(tmp_path / 'unused'),
                             rounds=2, num_clients=2, local_iters=1)
    path = str(tmp_path / 'shared_cfg.py')
    cfg.dump(path)
    sites = split_fmnist_sites(cfg, str(tmp_path / 'sites'))
    nodes = [{'data-root': d, 'state-dir': str(tmp_path / f'state{k}')}
             for k, d in enumerate(sites)]
    server = str(tmp_path / 'server')
    with LocalFederation(str(tmp_path / 'fed'), nodes, secure=True) as fed:
        registered = {_registered_id(fed.log(f'register{k}'))
                      for k in range(2)}
        # a site with real images and the CA, but a key never registered
        rogue = fed.start_node('_unregistered', {
            'data-root': sites[0], 'state-dir': str(tmp_path / 'rogue')},
            register=False)
        run = fed.run({'config': path, 'work-dir': server, 'resume': False,
                       'round-timeout': 480, 'enrol-timeout': 240},
                      RUN_TIMEOUT)
        rc = _wait(rogue, REFUSAL_TIMEOUT, 'the unregistered SuperNode')
        rogue_log = fed.log('supernode_unregistered')
        assert rc != 0, rogue_log[-2000:]
        assert f'Exit Code: {CONNECTION_ERROR}' in rogue_log, rogue_log
        assert 'Failed to activate SuperNode' in rogue_log, rogue_log
        assert 'No SuperNode found with the given public key' in \
            fed.log('superlink')
        rc = _wait(run, RUN_TIMEOUT, 'flwr run')
        assert rc == 0, fed.log('run')[-3000:]
    link = fed.log('superlink')
    assert 'https://127.0.0.1' in link  # TLS was on
    # only the registered nodes got a node id, and both answered the run
    assert _link_nodes(link, '[Fleet.ActivateNode] Activated') == registered
    assert _link_nodes(link, 'Push replies from') == registered
    ckpt = osp.join(server, 'epoch_2.pth')
    assert osp.isfile(ckpt), (sorted(glob.glob(server + '/*')),
                              fed.log('run')[-3000:])
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state['federated']['round'] == 2
    assert any(k.startswith('backbone.') for k in state['state_dict'])
    for k in range(2):  # the local state stayed at each registered site
        assert glob.glob(str(tmp_path / f'state{k}' / 'client_state_r1.pth'))
    assert not glob.glob(str(tmp_path / 'rogue' / '*'))
    # the server's checkpoint is an ordinary one for the downstream tools
    tool = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'model_converters',
        'extract_backbone.py')
    subprocess.run([sys.executable, tool, ckpt,
                    str(tmp_path / 'backbone.pth')], check=True)
    assert osp.isfile(tmp_path / 'backbone.pth')
