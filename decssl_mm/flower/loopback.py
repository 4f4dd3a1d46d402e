"""A whole federation on 127.0.0.1: one SuperLink, N SuperNodes, one run.

For trying a config across sites on one machine (and for the tests): the
processes are Flower's own command-line programs, started from the venv
this Python runs in, and stopped by PID whatever happens.
"""
import json
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

#: The checkout this decssl_mm comes from (every process imports it).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
APP_DIR = osp.join(REPO, 'tools', 'flower', 'app')


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace('\\', '\\\\').replace('"', '\\"') + '"'


def toml_pairs(values: Dict) -> str:
    """``k=v`` pairs as ``--node-config`` / ``--run-config`` take them."""
    return ' '.join(f'{k}={_toml_value(v)}' for k, v in values.items())


class LocalFederation:
    """Start and stop a loopback federation.

    Args:
        work_dir (str): Logs of every process and the Flower home.
        node_configs (list[dict]): One node config per SuperNode.
        extra_env (dict, optional): More environment for every process.
    """

    def __init__(self, work_dir: str, node_configs: Sequence[Dict],
                 extra_env: Optional[Dict[str, str]] = None) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.node_configs = list(node_configs)
        self.port = free_port()
        self.procs: List[subprocess.Popen] = []
        self.bin = osp.dirname(sys.executable)
        env = dict(os.environ)
        env['PATH'] = self.bin + os.pathsep + env.get('PATH', '')
        env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
        env['FLWR_HOME'] = osp.join(self.work_dir, 'flwr_home')
        env.update(extra_env or {})
        self.env = env
        os.makedirs(env['FLWR_HOME'], exist_ok=True)
        with open(osp.join(env['FLWR_HOME'], 'config.toml'), 'w') as f:
            f.write('[superlink]\ndefault = "loopback"\n\n'
                    '[superlink.loopback]\n'
                    f'address = "127.0.0.1:{self.port}"\ninsecure = true\n')

    def _start(self, name: str, args: List[str]) -> subprocess.Popen:
        log = open(osp.join(self.work_dir, f'{name}.log'), 'w')
        proc = subprocess.Popen([osp.join(self.bin, args[0])] + args[1:],
                                stdout=log, stderr=subprocess.STDOUT,
                                env=self.env, cwd=self.work_dir,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """Start the SuperLink and the SuperNodes."""
        self._start('superlink', [
            'flower-superlink', '--insecure', '--host', '127.0.0.1',
            '--port', str(self.port)])
        time.sleep(3)
        self.nodes = [self.start_node(i, nc)
                      for i, nc in enumerate(self.node_configs)]

    def start_node(self, i: int, node_config: Dict) -> subprocess.Popen:
        """Start SuperNode ``i`` with its node config."""
        return self._start(f'supernode{i}', [
            'flower-supernode', '--insecure', '--superlink',
            f'127.0.0.1:{self.port}', '--port', str(free_port()),
            '--node-config', toml_pairs(node_config)])

    def run(self, run_config: Dict, timeout: float) -> subprocess.Popen:
        """``flwr run`` the app with ``run_config``; returns the process
        (its output: ``run.log``)."""
        return self._start('run', [
            'flwr', 'run', APP_DIR, 'loopback', '--stream',
            '--run-config', toml_pairs(run_config)])

    def run_status(self, timeout: float = 60) -> str:
        """The status the SuperLink holds for the run :meth:`run` started
        (``finished:completed``, ``finished:failed``, ``running``...):
        ``flwr run --stream`` exits 0 whatever the ServerApp did.

        Args:
            timeout (float): Seconds to wait for ``flwr ls``.

        Raises:
            RuntimeError: ``run.log`` names no run (the run did not start).
        """
        found = re.search(r'started run (\d+)', self.log('run'))
        if found is None:
            raise RuntimeError(f'No run id in {self.work_dir}/run.log: the '
                               'run did not start.')
        out = subprocess.run(
            [osp.join(self.bin, 'flwr'), 'ls', 'loopback', '--run-id',
             found.group(1), '--format', 'json'], env=self.env,
            cwd=self.work_dir, capture_output=True, text=True,
            timeout=timeout, check=True)
        return str(json.loads(out.stdout)['runs'][0]['status'])

    def log(self, name: str) -> str:
        """A process's output so far."""
        with open(osp.join(self.work_dir, f'{name}.log')) as f:
            return f.read()

    def _descendants(self) -> List[int]:
        """PIDs started below ours (Flower starts its app processes in
        sessions of their own, out of reach of a process-group kill)."""
        try:
            import psutil
        except ImportError:
            return []
        pids = []
        for proc in self.procs:
            try:
                pids += [c.pid for c in psutil.Process(
                    proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return pids

    def kill_node(self, i: int) -> List[int]:
        """SIGKILL SuperNode ``i`` and every process it started (its app
        processes), as a crash or a power cut would: no goodbye to the
        SuperLink, which notices only when the heartbeats stop.

        Args:
            i (int): The SuperNode's index in ``node_configs``.

        Returns:
            list[int]: The PIDs killed (SuperNode first). Needs ``psutil``
            (the ``tests`` extra).
        """
        import psutil
        node = self.nodes[i]
        frozen: List[int] = []
        todo = [node.pid]
        while todo:  # stop the tree first, so that nothing new starts
            pid = todo.pop()
            try:
                os.kill(pid, signal.SIGSTOP)
                frozen.append(pid)
                todo += [c.pid for c in psutil.Process(pid).children()
                         if c.pid not in frozen]
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait()
        return frozen

    def stop(self) -> None:
        """Stop every process started (its process group, by PID) and the
        processes they started."""
        below = self._descendants()
        for pid in below:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> 'LocalFederation':
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
