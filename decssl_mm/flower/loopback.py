"""A whole federation on 127.0.0.1: one SuperLink, N SuperNodes, one run.

For trying a config across sites on one machine (and for the tests): the
processes are Flower's own command-line programs, started from the venv
this Python runs in, and stopped by PID whatever happens. With
``secure=True`` the federation runs as a real one should: TLS with
certificates made on the spot (:mod:`decssl_mm.flower.certs`) and SuperNode
authentication, each SuperNode with a key pair of its own, registered with
``flwr supernode register`` before it starts.
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
from typing import Dict, List, Optional, Sequence, Union

#: The checkout this decssl_mm comes from (every process imports it).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
APP_DIR = osp.join(REPO, 'tools', 'flower', 'app')
#: Seconds to wait for the SuperLink to listen, and for one ``flwr`` CLI
#: call (its start-up alone takes seconds on a loaded machine).
START_TIMEOUT = 120


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float,
                   proc: Optional[subprocess.Popen] = None) -> bool:
    """Wait until something listens on ``127.0.0.1:port``.

    Args:
        port (int): The TCP port.
        timeout (float): Seconds to wait at most.
        proc (subprocess.Popen, optional): The process meant to listen;
            stop waiting when it exits.

    Returns:
        bool: Whether the port accepts connections.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(('127.0.0.1', port)) == 0:
                return True
        time.sleep(0.5)
    return False


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
        work_dir (str): Logs of every process and the Flower home (and,
            with ``secure``, ``certs/`` and ``keys/``).
        node_configs (list[dict]): One node config per SuperNode.
        extra_env (dict, optional): More environment for every process.
        secure (bool): TLS (a CA and a server certificate for 127.0.0.1
            made in ``work_dir/certs``) and SuperNode authentication
            (``--enable-supernode-auth``; a key pair per SuperNode in
            ``work_dir/keys``, registered before the node starts). Default:
            ``--insecure`` everywhere.
    """

    def __init__(self, work_dir: str, node_configs: Sequence[Dict],
                 extra_env: Optional[Dict[str, str]] = None,
                 secure: bool = False) -> None:
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
        self.secure = secure
        self.tls: Dict[str, str] = {}
        if secure:
            from .certs import make_tls_files
            self.tls = make_tls_files(osp.join(self.work_dir, 'certs'))
        os.makedirs(env['FLWR_HOME'], exist_ok=True)
        with open(osp.join(env['FLWR_HOME'], 'config.toml'), 'w') as f:
            f.write(self._cli_config())

    def _cli_config(self) -> str:
        """The ``flwr`` CLI's ``config.toml``: one connection, ``loopback``
        (``root-certificates`` with TLS, ``insecure = true`` without)."""
        if self.secure:
            trust = f'root-certificates = {_toml_value(self.tls["ca"])}\n'
        else:
            trust = 'insecure = true\n'
        return ('[superlink]\ndefault = "loopback"\n\n'
                '[superlink.loopback]\n'
                f'address = "127.0.0.1:{self.port}"\n' + trust)

    def _link_security(self) -> List[str]:
        """The SuperLink's TLS and authentication flags."""
        if not self.secure:
            return ['--insecure']
        return ['--ssl-ca-certfile', self.tls['ca'],
                '--ssl-certfile', self.tls['certfile'],
                '--ssl-keyfile', self.tls['keyfile'],
                '--enable-supernode-auth']

    def _start(self, name: str, args: List[str]) -> subprocess.Popen:
        log = open(osp.join(self.work_dir, f'{name}.log'), 'w')
        proc = subprocess.Popen([osp.join(self.bin, args[0])] + args[1:],
                                stdout=log, stderr=subprocess.STDOUT,
                                env=self.env, cwd=self.work_dir,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """Start the SuperLink and the SuperNodes (with ``secure``: each
        registered first).

        Raises:
            RuntimeError: The SuperLink does not listen within
                ``START_TIMEOUT`` seconds (its log's end in the message),
                or a registration fails.
        """
        link = self._start('superlink', [
            'flower-superlink', *self._link_security(), '--host',
            '127.0.0.1', '--port', str(self.port)])
        if not wait_listening(self.port, START_TIMEOUT, link):
            raise RuntimeError(
                f'flower-superlink did not listen on 127.0.0.1:{self.port} '
                f'within {START_TIMEOUT} s; superlink.log ends:\n'
                + self.log('superlink')[-2000:])
        time.sleep(1)
        if self.secure:
            self.register(range(len(self.node_configs)))
        self.nodes = [self.start_node(i, nc, register=False)
                      for i, nc in enumerate(self.node_configs)]

    def node_key(self, i: Union[int, str]) -> str:
        """SuperNode ``i``'s private key (made on first use; the public key
        next to it, ``.pub``). Only with ``secure``."""
        from .certs import make_node_keys
        path = osp.join(self.work_dir, 'keys', f'supernode{i}.key')
        if not osp.isfile(path):
            make_node_keys(path)
        return path

    def cli(self, args: List[str], name: str) -> subprocess.Popen:
        """Start the ``flwr`` CLI against this federation (its output:
        ``<name>.log``; stopped with the rest if still running).

        Args:
            args (list[str]): Arguments after ``flwr``.
            name (str): Name of its log.
        """
        return self._start(name, ['flwr'] + list(args))

    def wait_cli(self, proc: subprocess.Popen, name: str) -> str:
        """Wait for a ``flwr`` CLI call and return its output.

        Args:
            proc (subprocess.Popen): From :meth:`cli`.
            name (str): Name of its log.

        Raises:
            RuntimeError: It fails or outlasts ``START_TIMEOUT``, with the
                command and its output.
        """
        cmd = ' '.join(proc.args[1:])
        try:
            rc = proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f'`flwr {cmd}` did not finish within '
                               f'{START_TIMEOUT} s') from e
        out = self.log(name)
        if rc:
            raise RuntimeError(f'`flwr {cmd}` failed ({rc}):\n{out[-2000:]}')
        return out

    def register(self, names: Sequence[Union[int, str]]) -> List[str]:
        """Register the public keys of SuperNodes ``names`` with the
        SuperLink (``flwr supernode register KEY.pub loopback``, all at
        once); returns each call's output (also in ``register<i>.log``).
        """
        procs = [self.cli(['supernode', 'register',
                           self.node_key(i) + '.pub', 'loopback'],
                          f'register{i}') for i in names]
        return [self.wait_cli(p, f'register{i}')
                for p, i in zip(procs, names)]

    def start_node(self, i: Union[int, str], node_config: Dict,
                   register: bool = True) -> subprocess.Popen:
        """Start SuperNode ``i`` with its node config.

        Args:
            i (int | str): The node's name (its log: ``supernode<i>.log``).
            node_config (dict): Its ``--node-config``.
            register (bool): With ``secure``: register its public key
                first. A node started without is refused by the SuperLink
                (it exits with Flower's connection error).
        """
        if self.secure:
            key = self.node_key(i)
            if register:
                self.register([i])
            security = ['--root-certificates', self.tls['ca'],
                        '--auth-supernode-private-key', key]
        else:
            security = ['--insecure']
        return self._start(f'supernode{i}', [
            'flower-supernode', *security, '--superlink',
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
