"""One run per work dir: a second run in a held dir stops before touching
anything; a lock left by a crashed run is taken over with a WARNING."""
import json
import os
import socket
import subprocess
import sys

import pytest

from decssl_mm.engine import workdir_lock
from decssl_mm.engine.workdir_lock import (LOCK_NAME, WorkDirLockedError,
                                           acquire_work_dir_lock,
                                           release_work_dir_lock)


@pytest.fixture
def sleeper():
    """A live process standing for another run."""
    proc = subprocess.Popen([sys.executable, '-c',
                             'import time; time.sleep(120)'])
    yield proc
    proc.kill()
    proc.wait()


def _plant(work_dir, pid, host=None, start='auto'):
    info = dict(pid=pid, host=host or socket.gethostname(), time=0.0,
                token='other')
    info['start'] = (workdir_lock._process_start(pid)
                     if start == 'auto' else start)
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, LOCK_NAME), 'w') as f:
        json.dump(info, f)


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(workdir_lock, 'print_log',
                        lambda msg, **kw: seen.append(msg))
    return seen


def test_lock_is_exclusive_and_released(tmp_path):
    work = str(tmp_path / 'w')
    path = acquire_work_dir_lock(work)
    assert os.path.isfile(path)
    info = json.load(open(path))
    assert info['pid'] == os.getpid()
    assert acquire_work_dir_lock(work) == path  # re-entrant
    release_work_dir_lock(work)
    assert not os.path.exists(path)
    assert os.listdir(work) == []


def test_live_holder_refused_before_anything(tmp_path, sleeper):
    work = str(tmp_path / 'w')
    _plant(work, sleeper.pid)
    os.makedirs(os.path.join(work, 'client_states'))
    open(os.path.join(work, 'client_states', 'client_000000.r000001.pth'),
         'w').close()
    before = sorted(os.listdir(work))
    with pytest.raises(WorkDirLockedError) as info:
        acquire_work_dir_lock(work)
    msg = str(info.value)
    assert f'pid {sleeper.pid}' in msg and work in msg
    assert sorted(os.listdir(work)) == before
    assert os.listdir(os.path.join(work, 'client_states'))


def test_train_tool_refuses_locked_dir(tmp_path, sleeper, monkeypatch):
    """tools/train.py stops before the Runner is built (no log, no dump)."""
    import importlib.util
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        '_train_tool', os.path.join(root, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    work = str(tmp_path / 'w')
    _plant(work, sleeper.pid)
    before = sorted(os.listdir(work))

    def no_runner(cfg):
        raise AssertionError('the Runner was built in a locked work dir')

    monkeypatch.setattr(tool.Runner, 'from_cfg', no_runner)
    monkeypatch.setattr(sys, 'argv', [
        'train.py',
        os.path.join(root, 'configs/decssl/simclr_r18_fmnist_dir0.1.py'),
        '--work-dir', work
    ])
    with pytest.raises(WorkDirLockedError, match='in use by another run'):
        tool.main()
    assert sorted(os.listdir(work)) == before


def test_stale_lock_of_dead_process_taken_over(tmp_path, warnings):
    work = str(tmp_path / 'w')
    dead = subprocess.Popen(['true'])
    dead.wait()
    _plant(work, dead.pid)
    path = acquire_work_dir_lock(work)
    try:
        assert json.load(open(path))['pid'] == os.getpid()
        assert any('stale lock' in w and str(dead.pid) in w
                   for w in warnings)
    finally:
        release_work_dir_lock(work)


def test_reused_pid_and_torn_lock_are_stale(tmp_path, sleeper, warnings):
    work = str(tmp_path / 'w')
    _plant(work, sleeper.pid, start='12345')  # pid now another process
    acquire_work_dir_lock(work)
    release_work_dir_lock(work)
    with open(os.path.join(work, LOCK_NAME), 'w') as f:
        f.write('{"pi')  # crash while the lock was written
    acquire_work_dir_lock(work)
    release_work_dir_lock(work)
    assert len(warnings) == 2


def test_lock_of_other_host_refused(tmp_path):
    work = str(tmp_path / 'w')
    _plant(work, 1, host='some-other-host', start=None)
    with pytest.raises(WorkDirLockedError, match='some-other-host'):
        acquire_work_dir_lock(work)


def test_lock_released_at_exit_and_after_kill(tmp_path, warnings):
    work = str(tmp_path / 'w')
    # the module alone (not the whole package): a fast subprocess
    code = ('import sys, importlib.util as u; '
            f's = u.spec_from_file_location("m", {workdir_lock.__file__!r}); '
            'm = u.module_from_spec(s); s.loader.exec_module(m); '
            'm.acquire_work_dir_lock(sys.argv[1])')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, '-c', code, work], check=True, env=env)
    assert not os.path.exists(os.path.join(work, LOCK_NAME))
    killed = subprocess.run(
        [sys.executable, '-c', code + '; import os; os._exit(1)', work],
        env=env)
    assert killed.returncode == 1
    assert os.path.exists(os.path.join(work, LOCK_NAME))
    acquire_work_dir_lock(work)
    release_work_dir_lock(work)
    assert warnings and 'no longer exists' in warnings[0]
