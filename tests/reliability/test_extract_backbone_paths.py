"""The backbone exporter never overwrites its input nor leaves torn files."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py')


def _tool():
    spec = importlib.util.spec_from_file_location('extract_backbone', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def ckpt(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(
        {
            'state_dict': {
                'backbone.conv1.weight': torch.randn(4, 3, 3, 3),
                'neck.fc.weight': torch.randn(2, 4),
            },
            'meta': {}
        }, path)
    return path


def _bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def test_output_equal_to_input_refused(ckpt, tmp_path, capsys):
    before = _bytes(ckpt)
    hard = str(tmp_path / 'hard.pth')
    os.link(ckpt, hard)
    soft = str(tmp_path / 'soft.pth')
    os.symlink(ckpt, soft)
    relative = osp.relpath(ckpt)
    for out in (ckpt, hard, soft, relative):
        assert _tool().main([ckpt, out]) == 2
        err = capsys.readouterr().err
        assert repr(out) in err and 'is the input checkpoint' in err
    assert _bytes(ckpt) == before
    assert sorted(os.listdir(str(tmp_path))) == [
        'epoch_1.pth', 'hard.pth', 'soft.pth'
    ]


def test_output_directory_refused(ckpt, tmp_path, capsys):
    out_dir = tmp_path / 'exports'
    out_dir.mkdir()
    assert _tool().main([ckpt, str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert repr(str(out_dir)) in err and 'is a directory' in err
    assert os.listdir(str(out_dir)) == []


def test_output_with_trailing_separator_refused(ckpt, tmp_path, capsys):
    """``newdir/`` names a directory, not a file called ``newdir``."""
    out = str(tmp_path / 'newdir') + os.sep
    assert _tool().main([ckpt, out]) == 2
    assert 'is a directory' in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / 'newdir'))


def test_command_line_exit_status(ckpt):
    before = _bytes(ckpt)
    proc = subprocess.run([sys.executable, TOOL, ckpt, ckpt],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'is the input checkpoint' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert _bytes(ckpt) == before


def test_interrupted_write_keeps_previous_output(ckpt, tmp_path, monkeypatch):
    out = str(tmp_path / 'backbone.pth')
    assert _tool().main([ckpt, out]) == 0
    before = _bytes(out)
    saved = torch.load(out, weights_only=True)
    assert list(saved['state_dict']) == ['backbone.conv1.weight']

    def torn_save(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise OSError('disk full')

    import decssl_mm.utils.io as io_mod
    monkeypatch.setattr(io_mod.torch, 'save', torn_save)
    with pytest.raises(OSError, match='disk full'):
        _tool().main([ckpt, out, '--layout', 'bare'])
    assert _bytes(out) == before
    assert sorted(os.listdir(str(tmp_path))) == ['backbone.pth', 'epoch_1.pth']
