"""Every checkpoint scheme of mmengine's CheckpointLoader loads weights-only.

mmengine's own loaders of ``http(s)://``, ``torchvision://``,
``open-mmlab://``, ``mmcls://`` (through ``torch.hub``'s cache), ``s3://`` and
``pavi://`` unpickle with code execution allowed. Each test plants a file
where the scheme looks (a temporary ``$TORCH_HOME`` hub cache,
``$MMENGINE_HOME``, a fake storage backend or ``pavi`` module; never the
network) whose unpickling would create a marker directory, and checks that
loading it is refused with an error naming it, that the marker was never
created, and that a plain weights file at the same place loads.
"""
import io
import json
import os
import os.path as osp
import sys
import types

import pytest
import torch
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import decssl_mm  # noqa: F401  (registers the loaders)
from decssl_mm.engine import checkpoint_loader
from decssl_mm.utils.io import CheckpointLoadError, UnsafeCheckpointError
from _helpers.payload import CodePayload

SIMCLR = 'configs/decssl/simclr_r18_fmnist_dir0.1.py'


def _evil(marker):
    return {'state_dict': {'backbone.w': torch.ones(2)},
            'payload': CodePayload(marker)}


def _benign():
    return {'state_dict': {'backbone.w': torch.arange(3.)}}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Temporary hub cache and mmengine home; downloading is an error."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    os.makedirs(str(tmp_path / 'mmengine'))
    with open(str(tmp_path / 'mmengine' / 'open_mmlab.json'), 'w') as f:
        json.dump({'hub_model': 'https://example.com/zoo/hub_model.pth',
                   'home_model': 'models/home_model.pth'}, f)

    def no_network(url, dst, *args, **kwargs):
        raise AssertionError(f'tried to download {url}')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    marker = str(tmp_path / 'PWNED')
    yield types.SimpleNamespace(tmp=tmp_path, marker=marker,
                                monkeypatch=monkeypatch)
    assert not osp.exists(marker), 'the pickled callable was executed'


def _hub_file(url):
    return osp.join(torch.hub.get_dir(), 'checkpoints',
                    osp.basename(url.split('?')[0]))


def _plant_at(path, obj):
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(obj, path)
    return path


def _mmcls_name():
    return sorted(mm_checkpoint.get_mmcls_models())[0]


# scheme -> where the file it loads lies (called inside the env fixture)
LOCATIONS = {
    'http://example.com/a/plain.pth': lambda u, e: _hub_file(u),
    'https://example.com/a/plain2.pth': lambda u, e: _hub_file(u),
    'torchvision://resnet18': lambda u, e: _hub_file(
        mm_checkpoint.get_torchvision_models()['resnet18']),
    'modelzoo://resnet18': lambda u, e: _hub_file(
        mm_checkpoint.get_torchvision_models()['resnet18']),
    'open-mmlab://hub_model': lambda u, e: _hub_file('hub_model.pth'),
    'openmmlab://home_model': lambda u, e: str(
        e.tmp / 'mmengine' / 'models' / 'home_model.pth'),
    'mmcls://': lambda u, e: _hub_file(
        mm_checkpoint.get_mmcls_models()[_mmcls_name()]),
}


def _url(scheme):
    return scheme + _mmcls_name() if scheme == 'mmcls://' else scheme


@pytest.mark.parametrize('scheme', sorted(LOCATIONS))
def test_cached_file_with_code_is_refused(env, scheme):
    url = _url(scheme)
    path = _plant_at(LOCATIONS[scheme](url, env), _evil(env.marker))
    with pytest.raises(UnsafeCheckpointError) as e:
        _load_checkpoint(url, map_location='cpu')
    msg = str(e.value)
    assert 'Refusing to load checkpoint' in msg and path in msg
    assert 'makedirs' in msg
    assert isinstance(e.value, CheckpointLoadError)


@pytest.mark.parametrize('scheme', sorted(LOCATIONS))
def test_cached_plain_weights_load(env, scheme):
    url = _url(scheme)
    _plant_at(LOCATIONS[scheme](url, env), _benign())
    ckpt = _load_checkpoint(url, map_location='cpu')
    key = 'w' if scheme == 'mmcls://' else 'backbone.w'  # mmcls: renamed
    assert torch.equal(ckpt['state_dict'][key], torch.arange(3.))


def test_downloaded_file_is_loaded_weights_only(env):
    url = 'https://example.com/fresh/model.pth'

    def download(u, dst, *args, **kwargs):
        assert u == url
        torch.save(_evil(env.marker), dst)

    env.monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    with pytest.raises(UnsafeCheckpointError, match=r'https://example\.com'):
        _load_checkpoint(url)
    assert osp.isfile(_hub_file(url))


class _FakeObjectStore:

    def __init__(self, objects):
        self.objects = objects

    def get(self, uri):
        return self.objects[uri]


@pytest.mark.parametrize(
    'uri', ['s3://bucket/ckpt.pth', 'petrel://bucket/ckpt.pth',
            'cluster1:s3://bucket/ckpt.pth'])
def test_object_store_checkpoints_are_weights_only(env, uri):
    buf = io.BytesIO()
    torch.save(_evil(env.marker), buf)
    good = io.BytesIO()
    torch.save(_benign(), good)
    store = _FakeObjectStore({uri: buf.getvalue(),
                              uri + '.good': good.getvalue()})
    env.monkeypatch.setattr(checkpoint_loader, 'get_file_backend',
                            lambda *a, **k: store)
    with pytest.raises(UnsafeCheckpointError, match=uri.replace('.', r'\.')):
        _load_checkpoint(uri)
    ckpt = _load_checkpoint(uri + '.good')
    assert torch.equal(ckpt['state_dict']['backbone.w'], torch.arange(3.))


def test_pavi_checkpoints_are_weights_only(env):
    objects = {'proj/evil.pth': _evil(env.marker),
               'proj/good.pth': _benign()}

    class Model:

        def __init__(self, path):
            self.path = path
            self.name = osp.basename(path)

        def download(self, dst):
            torch.save(objects[self.path], dst)

    pavi = types.ModuleType('pavi')
    pavi.modelcloud = types.SimpleNamespace(get=Model)
    env.monkeypatch.setitem(sys.modules, 'pavi', pavi)
    with pytest.raises(UnsafeCheckpointError, match='pavi://proj/evil.pth'):
        _load_checkpoint('pavi://proj/evil.pth')
    ckpt = _load_checkpoint('pavi://proj/good.pth')
    assert torch.equal(ckpt['state_dict']['backbone.w'], torch.arange(3.))


def test_every_known_scheme_has_a_weights_only_loader():
    safe = set(checkpoint_loader.SAFE_CHECKPOINT_LOADERS.values())
    schemes = dict(CheckpointLoader._schemes)
    for prefix in ('', 'http://', 'https://', 'torchvision://',
                   'modelzoo://', 'open-mmlab://', 'openmmlab://',
                   'mmcls://', 'pavi://', r'(\S+\:)?s3://',
                   r'(\S+\:)?petrel://'):
        assert schemes[prefix] in safe, prefix
    for prefix, loader in schemes.items():
        assert loader in safe or \
            loader.__name__ == 'load_from_unverified_scheme', prefix


def test_a_foreign_scheme_is_refused(env):
    env.monkeypatch.setattr(CheckpointLoader, '_schemes',
                            dict(CheckpointLoader._schemes))

    def load_from_hdfs(filename, map_location=None):
        return torch.load(filename, weights_only=False)

    CheckpointLoader.register_scheme('hdfs://', load_from_hdfs)
    checkpoint_loader.register_safe_checkpoint_loaders()
    with pytest.raises(UnsafeCheckpointError,
                       match=r"hdfs://x/y\.pth: its scheme 'hdfs://'"):
        _load_checkpoint('hdfs://x/y.pth')


def test_a_scheme_registered_after_import_is_refused_at_load(env):
    """No call of register_safe_checkpoint_loaders after the foreign
    registration: the check happens when the checkpoint is loaded."""
    env.monkeypatch.setattr(CheckpointLoader, '_schemes',
                            dict(CheckpointLoader._schemes))
    called = []

    def load_from_hdfs(filename, map_location=None):
        called.append(filename)
        return torch.load(filename, weights_only=False)

    CheckpointLoader.register_scheme('hdfs://', load_from_hdfs, force=True)
    with pytest.raises(UnsafeCheckpointError,
                       match=r"hdfs://x/y\.pth: its scheme 'hdfs://'"):
        _load_checkpoint('hdfs://x/y.pth')
    assert not called


def test_unknown_model_name_is_a_clear_error(env):
    with pytest.raises(KeyError, match="no model named 'resnet181'.*"
                       r"Did you mean \[.*'resnet18'"):
        _load_checkpoint('torchvision://resnet181')


# ------------------------------------------------- through the stack
def test_pretrained_init_cfg_with_url_refuses_code(env):
    from mmpretrain.models import ResNet
    url = 'https://example.com/pre/backbone.pth'
    _plant_at(_hub_file(url), _evil(env.marker))
    for prefix in ('backbone.', None):
        init = dict(type='Pretrained', checkpoint=url)
        if prefix:
            init['prefix'] = prefix
        model = ResNet(depth=18, base_channels=8, stem_channels=8,
                       init_cfg=init)
        with pytest.raises(UnsafeCheckpointError, match='backbone.pth'):
            model.init_weights()


def test_load_from_and_resume_with_url_refuse_code(env, fmnist_root):
    from mmengine.runner import Runner

    from _helpers.configs import tiny_federated_cfg
    url = 'https://example.com/runs/epoch_1.pth'
    _plant_at(_hub_file(url), _evil(env.marker))
    for resume in (False, True):
        cfg = tiny_federated_cfg(SIMCLR, fmnist_root,
                                 str(env.tmp / f'work{int(resume)}'))
        cfg.load_from = url
        cfg.resume = resume
        with pytest.raises(UnsafeCheckpointError,
                           match=r'example\.com/runs/epoch_1\.pth'):
            Runner.from_cfg(cfg).train()
