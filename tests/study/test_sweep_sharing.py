"""Sweeps side by side: point claims, the deadline guard."""
import datetime
import os
import subprocess
import sys

from ._sweep_module import load_tool

sweep = load_tool('sweep')


def test_claim_is_exclusive_and_a_dead_claim_is_taken_over(tmp_path):
    wd = str(tmp_path / 'point')
    first = sweep.claim_point(wd)
    assert first == wd + '.claim' and os.path.isfile(first)
    assert sweep.claim_point(wd) is None  # held by this live process
    sweep.release_claim(first)
    assert not os.path.exists(first)
    # a claim left by a process that has exited
    dead = subprocess.run([sys.executable, '-c', 'import os;print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    with open(first, 'w') as f:
        f.write(f'{os.uname().nodename} {dead}\n')
    assert sweep.claim_point(wd) == first
    with open(first) as f:
        assert f.read().split()[1] == str(os.getpid())


def test_deadline_guard():
    now = datetime.datetime.now()
    assert sweep.starts_in_time(None, 30)
    assert sweep.starts_in_time(now + datetime.timedelta(minutes=40), 30)
    assert not sweep.starts_in_time(now + datetime.timedelta(minutes=20), 30)
    assert sweep.parse_deadline('2026-12-02T20:45').minute == 45
    hhmm = sweep.parse_deadline('07:05')
    assert (hhmm.hour, hhmm.minute, hhmm.date()) == (7, 5, now.date())
