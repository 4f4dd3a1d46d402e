"""Run one config on 1 process and on 2 (torchrun, gloo on CPU)."""
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Tuple

import torch

from .configs import ROOT


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def subprocess_env() -> dict:
    """Environment of the training subprocesses (1 thread each)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    return env


def train_one_and_two_processes(cfg, tmp_path,
                                ckpt: str) -> Tuple[dict, dict, str, str]:
    """Train ``cfg`` with tools/train.py and with tools/dist_train.sh 2.

    Returns:
        tuple: the two loaded checkpoints ``ckpt`` and the two work dirs.
    """
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/train.py'),
                    cfg_path, '--work-dir', one], check=True,
                   env=subprocess_env(), timeout=600, cwd=ROOT)
    env = subprocess_env()
    env['PORT'] = str(free_port())
    env['PYTHON'] = sys.executable
    subprocess.run(['bash', osp.join(ROOT, 'tools/dist_train.sh'), cfg_path,
                    '2', '--work-dir', two], check=True, env=env,
                   timeout=600, cwd=ROOT)
    a = torch.load(osp.join(one, ckpt), weights_only=True)
    b = torch.load(osp.join(two, ckpt), weights_only=True)
    return a, b, one, two
