"""Corruption is told apart from tampering: checksums are recorded when a
state file or checkpoint is written and checked when it is read; an
unreadable client state restarts its client; ``--resume`` names the newest
readable checkpoint and ``--resume auto`` falls back to it."""
import os
import os.path as osp
import zipfile

import pytest
import torch

from _helpers.payload import CodePayload
from decssl_mm.engine import resume_choice
from decssl_mm.engine.resume_choice import choose_resume_checkpoint
from decssl_mm.federated import DiskClientStateStore, state_recovery
from decssl_mm.utils.checksums import checksum_path
from decssl_mm.utils.io import (CorruptCheckpointError, UnsafeCheckpointError,
                                atomic_torch_save, safe_torch_load)


def flip_pickle_bytes(path: str, count: int = 10) -> None:
    """Flip ``count`` bytes in the middle of ``archive/data.pkl``."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith('data.pkl'))
        member = archive.read(name)
    with open(path, 'rb') as f:
        raw = bytearray(f.read())
    start = raw.find(member) + len(member) // 2 - count // 2
    for i in range(start, start + count):
        raw[i] ^= 0x7F
    with open(path, 'wb') as f:
        f.write(raw)


def _state():
    return {'queue': torch.arange(64.0).reshape(8, 8), 'step': 3,
            'names': ['a', 'b'], 'meta': {'k': 1.5}}


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(state_recovery, 'print_log',
                        lambda msg, **kw: seen.append(msg))
    monkeypatch.setattr(resume_choice, 'print_log',
                        lambda msg, **kw: seen.append(msg))
    return seen


def test_checksum_recorded_and_checked(tmp_path):
    path = str(tmp_path / 'x.pth')
    atomic_torch_save(_state(), path)
    assert osp.isfile(checksum_path(path))
    assert torch.equal(safe_torch_load(path)['queue'], _state()['queue'])
    flip_pickle_bytes(path)
    with pytest.raises(CorruptCheckpointError, match='x.pth') as info:
        safe_torch_load(path)
    assert 'SHA-256' in str(info.value) or 'checksum' in str(info.value)
    # rewriting the file records the new digest
    atomic_torch_save(_state(), path)
    safe_torch_load(path)


def test_bit_rot_restarts_client_with_one_warning(tmp_path, warnings):
    store = DiskClientStateStore()
    store.setup(str(tmp_path / 'w'))
    store.save(2, _state(), 0)
    store.flush()
    store.commit(0)
    path = store._path(2, 0)
    flip_pickle_bytes(path)
    assert store.load(2) is None
    assert store.load(2) is None
    assert len(warnings) == 1
    assert 'client_000002' in warnings[0] and 'restarts' in warnings[0]
    assert 'cannot be read' in warnings[0]
    # the next state it writes replaces the damaged one
    store.save(2, _state(), 1)
    store.flush()
    store.commit(1)
    assert torch.equal(store.load(2)['queue'], _state()['queue'])


def test_state_with_code_restarts_client_and_never_runs(tmp_path, warnings):
    marker = str(tmp_path / 'PWNED')
    store = DiskClientStateStore()
    store.setup(str(tmp_path / 'w'))
    store.save(1, _state(), 0)
    store.flush()
    store.commit(0)
    path = store._path(1, 0)
    torch.save({'payload': CodePayload(marker)}, str(tmp_path / 'evil.pth'))
    os.replace(str(tmp_path / 'evil.pth'), path)
    assert store.load(1) is None
    assert not osp.exists(marker)
    assert len(warnings) == 1 and 'holds code' in warnings[0]
    with pytest.raises(UnsafeCheckpointError, match='replaced'):
        safe_torch_load(path)
    assert not osp.exists(marker)


def _run_dir(tmp_path, sidecars=True):
    work = str(tmp_path / 'run')
    for epoch in (1, 2, 3):
        atomic_torch_save({'meta': {'epoch': epoch}, 'state_dict': {}},
                          osp.join(work, f'epoch_{epoch}.pth'))
        if not sidecars:
            os.remove(checksum_path(osp.join(work, f'epoch_{epoch}.pth')))
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'epoch_3.pth'))
    return work


@pytest.mark.parametrize('sidecars', [True, False])
def test_resume_names_newest_readable_checkpoint(tmp_path, warnings,
                                                 sidecars):
    work = _run_dir(tmp_path, sidecars)
    assert choose_resume_checkpoint(work).endswith('epoch_3.pth')
    flip_pickle_bytes(osp.join(work, 'epoch_3.pth'))
    with pytest.raises(CorruptCheckpointError) as info:
        choose_resume_checkpoint(work)
    msg = str(info.value)
    assert 'epoch_3.pth' in msg and 'epoch_2.pth' in msg
    assert '--resume auto' in msg
    got = choose_resume_checkpoint(work, fallback=True)
    assert got.endswith('epoch_2.pth')
    assert len(warnings) == 1 and 'epoch_3.pth' in warnings[0]


def test_resume_without_readable_checkpoint(tmp_path):
    work = _run_dir(tmp_path)
    for epoch in (1, 2, 3):
        flip_pickle_bytes(osp.join(work, f'epoch_{epoch}.pth'))
    with pytest.raises(CorruptCheckpointError, match='no other checkpoint'):
        choose_resume_checkpoint(work, fallback=True)
    assert choose_resume_checkpoint(str(tmp_path / 'empty')) is None


def test_pointer_directory_named(tmp_path):
    work = tmp_path / 'w'
    (work / 'last_checkpoint').mkdir(parents=True)
    with pytest.raises(ValueError, match='last_checkpoint is a directory'):
        choose_resume_checkpoint(str(work))
