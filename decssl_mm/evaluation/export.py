"""Export the ResNet backbone of a federated checkpoint for downstream use.

A federated checkpoint (written by mmengine's Runner through the federated
loop) holds the *global* self-supervised model under ``'state_dict'``
(``backbone.*``, ``neck.*``, ``head.*`` and, for MoCo/BYOL, a momentum copy)
and, for the clustered algorithm FeatARC, one model per cluster under
``checkpoint['federated']['extra']['clusters']`` with the index of the
default cluster in ``['extra']['chosen']``.

:func:`extract_backbone_state` picks the model (global or one cluster) and
returns its backbone with bare ResNet keys (``conv1.weight``,
``layer1.0.bn1.running_mean``, ...); :func:`save_backbone` writes it in one
of two layouts:

- ``'prefixed'``: ``{'state_dict': {'backbone.<key>': tensor}, 'meta': {...}}``
  for ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``;
- ``'bare'``: ``{<key>: tensor}``, e.g. for ``ResNet.load_state_dict``.

Both files hold only tensors, strings and ints, so they load with
``torch.load(..., weights_only=True)``.
"""
import os.path as osp
from collections import OrderedDict
from functools import lru_cache
from typing import Dict, Optional, Tuple, Union

import torch

from decssl_mm.utils.checkpoint_io import federated_extra, read_clusters
from decssl_mm.utils.io import atomic_torch_save, safe_torch_load
from decssl_mm.utils.state_dict import StateDict

__all__ = [
    'BACKBONE_PREFIX', 'LAYOUTS', 'load_checkpoint_dict', 'select_model_state',
    'split_backbone_state', 'infer_resnet_depth', 'extract_backbone_state',
    'backbone_file_content', 'save_backbone', 'check_backbone_compat',
    'format_summary'
]

BACKBONE_PREFIX = 'backbone.'
LAYOUTS = ('prefixed', 'bare')

# (block type, blocks per stage) of the standard ResNets, as in mmpretrain.
_RESNET_ARCHS = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}
# Top-level names of a bare ResNet state dict (plain or deep stem).
_BARE_ROOTS = ('conv1.', 'bn1.', 'stem.', 'layer')
_BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')
# Backbone types with the CIFAR stem (3x3 conv1, stride 1, no max-pool).
_CIFAR_TYPES = ('ResNet_CIFAR', )
STEMS = {
    'cifar': 'a CIFAR stem (conv1 3x3 stride 1, no max-pool: mmpretrain '
    'ResNet_CIFAR)',
    'imagenet': 'an ImageNet stem (conv1 7x7 stride 2, then max-pool: '
    'mmpretrain/mmdet/mmseg ResNet)',
}


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                    for k, v in obj.items()))


def load_checkpoint_dict(path: str) -> dict:
    """Read a checkpoint with ``weights_only=True``.

    Args:
        path (str): The checkpoint file.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file holds pickled code or is not a dict.
    """
    ckpt = safe_torch_load(path, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path}: expected a checkpoint dict, got '
                         f'{type(ckpt).__name__}.')
    return ckpt


def select_model_state(ckpt: dict,
                       path: str,
                       cluster: Optional[int] = None
                       ) -> Tuple[StateDict, int, int]:
    """Pick the model to export from a checkpoint.

    Args:
        ckpt (dict): The loaded checkpoint.
        path (str): Its file name, for error messages.
        cluster (int, optional): Index of a FeatARC cluster model. None
            exports ``federated.extra.chosen`` when the checkpoint has
            cluster models, else the global ``state_dict``.

    Returns:
        tuple: ``(state_dict, cluster index or -1, number of clusters)``.
    """
    extra = federated_extra(ckpt)
    clusters = read_clusters(extra)
    num_clusters = len(clusters)
    if cluster is None and num_clusters and extra.get('chosen') is not None:
        cluster = int(extra['chosen'])
    if cluster is None:
        if 'state_dict' in ckpt:
            return ckpt['state_dict'], -1, num_clusters
        if _is_state_dict(ckpt):  # a plain (e.g. already exported) file
            return ckpt, -1, num_clusters
        raise ValueError(f'{path}: no model weights found: the checkpoint '
                         f"has no 'state_dict' (keys: {sorted(ckpt)}).")
    if not num_clusters:
        raise ValueError(
            f'{path}: cluster {cluster} requested, but the checkpoint has no '
            "cluster models (checkpoint['federated']['extra']['clusters']).")
    if not 0 <= int(cluster) < num_clusters:
        raise ValueError(f'{path}: cluster {cluster} out of range: the '
                         f'checkpoint has {num_clusters} cluster models.')
    return clusters[int(cluster)], int(cluster), num_clusters



def load_whole_model(model: torch.nn.Module, ckpt_path: str,
                     cluster: Optional[int] = None) -> int:
    """Load a checkpoint's whole model (e.g. a classifier with its head).

    The model is picked by :func:`select_model_state` (FeatARC: the chosen
    or the given cluster); a ``module.`` wrapper prefix is removed; the load
    is strict.

    Args:
        model (torch.nn.Module): The built model (same config as trained).
        ckpt_path (str): The checkpoint file.
        cluster (int, optional): FeatARC cluster model to load.

    Returns:
        int: The training round of the checkpoint (-1 when unknown).
    """
    ckpt = load_checkpoint_dict(ckpt_path)
    state, _, _ = select_model_state(ckpt, ckpt_path, cluster)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return _round_of(ckpt)

def _looks_bare_resnet(state: StateDict) -> bool:
    keys = list(state)
    return (any(k.startswith('layer1.') for k in keys)
            and all(k.startswith(_BARE_ROOTS) for k in keys))


def split_backbone_state(state: StateDict, path: str) -> StateDict:
    """The backbone of a model state dict, with bare ResNet keys.

    Accepts ``backbone.*`` keys (also under a ``module.`` wrapper prefix) or
    an already bare ResNet state dict.

    Args:
        state (dict): A model state dict.
        path (str): The file it came from, for error messages.

    Raises:
        ValueError: If there are no backbone weights, naming the file.
    """
    if not isinstance(state, dict):
        raise ValueError(f'{path}: the model state is a '
                         f'{type(state).__name__}, not a dict.')
    for prefix in (BACKBONE_PREFIX, 'module.' + BACKBONE_PREFIX):
        found = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
        if found:
            break
    if not found and _is_state_dict(state) and _looks_bare_resnet(state):
        found = OrderedDict(state)
    if not found:
        roots = sorted({k.split('.', 1)[0] + '.' for k in state})
        raise ValueError(
            f'{path}: no backbone weights found: expected keys starting with '
            f"'{BACKBONE_PREFIX}' or a bare ResNet state dict; the model "
            f'has {len(state)} keys with prefixes {roots[:8]}.')
    bad = [k for k, v in found.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f'{path}: backbone entry {BACKBONE_PREFIX}{bad[0]} '
                         'is not a tensor.')
    return OrderedDict(
        (k, v.detach().clone().contiguous()) for k, v in found.items())


def infer_resnet_depth(state: StateDict) -> Optional[int]:
    """Guess the depth of a bare ResNet state dict from its blocks.

    Returns:
        int | None: 18, 34, 50, 101 or 152; None for anything else.
    """
    blocks = []
    for stage in range(1, 5):
        ids = {
            k.split('.')[1]
            for k in state if k.startswith(f'layer{stage}.')
        }
        blocks.append(len(ids))
    kind = 'bottleneck' if 'layer1.0.conv3.weight' in state else 'basic'
    for depth, arch in _RESNET_ARCHS.items():
        if arch == (kind, tuple(blocks)):
            return depth
    return None


def _round_of(ckpt: dict) -> int:
    meta = ckpt.get('meta')
    if isinstance(meta, dict) and meta.get('epoch') is not None:
        return int(meta['epoch'])
    fed = ckpt.get('federated')
    if isinstance(fed, dict) and fed.get('round') is not None:
        return int(fed['round'])
    return -1


def extract_backbone_state(ckpt_path: str, cluster: Optional[int] = None
                           ) -> Tuple[StateDict, dict]:
    """Read the backbone of the global (or a cluster) model of a checkpoint.

    Args:
        ckpt_path (str): A federated/mmengine checkpoint, or a file written
            by :func:`save_backbone` (either layout).
        cluster (int, optional): FeatARC cluster to export; None uses the
            checkpoint's chosen cluster, or the global model.

    Returns:
        tuple: ``(state, info)``: the backbone with bare ResNet keys, and a
        dict of plain values: ``source``, ``round`` (rounds done, -1 when
        unknown), ``cluster`` (-1 for the global model), ``num_clusters``,
        ``num_keys``, ``num_params`` (elements of the tensors other than BN
        statistics), ``depth`` (inferred, -1 when not a standard ResNet).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: Naming the file, if it holds pickled code, no backbone
            weights, or ``cluster`` does not exist.
    """
    ckpt = load_checkpoint_dict(ckpt_path)
    model_state, cluster_idx, num_clusters = select_model_state(
        ckpt, ckpt_path, cluster)
    state = split_backbone_state(model_state, ckpt_path)
    num_params = sum(v.numel() for k, v in state.items()
                     if not k.endswith(_BN_BUFFERS))
    info = dict(
        source=osp.abspath(ckpt_path),
        round=_round_of(ckpt),
        cluster=cluster_idx,
        num_clusters=num_clusters,
        num_keys=len(state),
        num_params=int(num_params),
        depth=infer_resnet_depth(state) or -1)
    return state, info


def backbone_file_content(state: StateDict, info: dict,
                          layout: str = 'prefixed') -> dict:
    """What :func:`save_backbone` writes.

    Args:
        state (dict): Bare backbone state dict.
        info (dict): The info of :func:`extract_backbone_state`.
        layout (str): ``'prefixed'`` or ``'bare'``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    if layout == 'bare':
        return OrderedDict(state)
    meta = {
        k: (v if isinstance(v, int) else str(v))
        for k, v in info.items()
    }
    meta['layout'] = layout
    return dict(
        state_dict=OrderedDict(
            (BACKBONE_PREFIX + k, v) for k, v in state.items()),
        meta=meta)


def save_backbone(state: StateDict,
                  info: dict,
                  out_path: str,
                  layout: str = 'prefixed') -> None:
    """Write a backbone file atomically (tensors, strings and ints only).

    Args:
        state (dict): Bare backbone state dict.
        info (dict): The info of :func:`extract_backbone_state`.
        out_path (str): Destination file.
        layout (str): ``'prefixed'`` (default) or ``'bare'``.
    """
    atomic_torch_save(backbone_file_content(state, info, layout), out_path)


def _backbone_args(spec: Union[int, dict]) -> dict:
    """ResNet arguments that decide the state dict keys and shapes."""
    if isinstance(spec, int):
        spec = dict(type='ResNet', depth=spec)
    if hasattr(spec, 'to_dict') and not isinstance(spec, dict):  # Config
        spec = spec.to_dict()
    if not isinstance(spec, dict):
        raise TypeError('model_cfg must be a ResNet depth (int) or a model/'
                        f'backbone config dict, got {type(spec).__name__}')
    cfg = spec
    if 'model' in cfg and isinstance(cfg['model'], dict):
        cfg = cfg['model']
    if 'backbone' in cfg and isinstance(cfg['backbone'], dict):
        cfg = cfg['backbone']
    if 'depth' not in cfg:
        raise ValueError(f'backbone config has no depth: {dict(cfg)}')
    typ = str(cfg.get('type', 'ResNet')).split('.')[-1]
    base = cfg.get('base_channels', 64)
    stem = cfg.get('stem_channels') or base
    return dict(
        depth=int(cfg['depth']),
        in_channels=cfg.get('in_channels', 3),
        stem_channels=stem,
        base_channels=base,
        num_stages=cfg.get('num_stages', 4),
        deep_stem=bool(cfg.get('deep_stem', typ in ('ResNetV1c',
                                                    'ResNetV1d'))),
        stem='cifar' if typ in _CIFAR_TYPES else 'imagenet')


def _expected_shapes(args: dict) -> Dict[str, tuple]:
    if args['depth'] not in _RESNET_ARCHS:
        raise ValueError(f"unsupported ResNet depth {args['depth']}; "
                         f'expected one of {sorted(_RESNET_ARCHS)}')
    return OrderedDict(_shapes_of(tuple(sorted(args.items()))))


@lru_cache(maxsize=8)
def _shapes_of(args: tuple) -> tuple:
    from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
    kwargs = dict(args)
    cls = ResNet_CIFAR if kwargs.pop('stem') == 'cifar' else ResNet
    model = cls(**kwargs, out_indices=(kwargs['num_stages'] - 1, ))
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def _describe(args: dict) -> str:
    stem = ', deep stem' if args.get('deep_stem') else ''
    cifar = ', CIFAR stem' if args.get('stem') == 'cifar' else ''
    return f"ResNet-{args['depth']}{stem}{cifar}"


def _stem_of(state: StateDict) -> Optional[str]:
    """``'cifar'`` (3x3 ``conv1``) or ``'imagenet'`` (7x7 ``conv1``) of a
    plain-stem ResNet state dict; None otherwise (e.g. a deep stem)."""
    weight = state.get('conv1.weight')
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        return None
    return {3: 'cifar', 7: 'imagenet'}.get(int(weight.shape[-1]))


def _check_stem(state: StateDict, args: dict, ckpt_path: str) -> None:
    """Refuse a CIFAR-stem file for an ImageNet-stem config or the reverse.
    """
    got = None if args['deep_stem'] else _stem_of(state)
    if got is None or got == args['stem']:
        return
    shape = tuple(state['conv1.weight'].shape)
    raise ValueError(
        f'{ckpt_path}: the backbone weights have {STEMS[got]} (conv1.weight '
        f"{shape}), but the config's backbone ({_describe(args)}) has "
        f"{STEMS[args['stem']]}; use a config with the checkpoint's stem "
        "(backbone type 'ResNet_CIFAR' for the CIFAR stem, 'ResNet' for the "
        'ImageNet stem).')


def check_backbone_compat(state: StateDict,
                          model_cfg: Union[int, dict],
                          ckpt_path: str = '<state dict>') -> None:
    """Check that a bare backbone state dict fits a ResNet config.

    Args:
        state (dict): Bare backbone state dict
            (from :func:`extract_backbone_state`).
        model_cfg (int | dict): A ResNet depth, a backbone config, a model
            config with ``backbone`` or a full config with ``model``
            (mmpretrain, mmdet or mmseg ResNet/ResNetV1c).
        ckpt_path (str): The file the state came from, for the message.

    Raises:
        ValueError: Naming the file, the expected architecture, the first
            mismatching key and the depth the checkpoint seems to have; for
            a CIFAR-stem file (``ResNet_CIFAR``: 3x3 ``conv1``, no max-pool)
            and an ImageNet-stem config (``ResNet``: 7x7 ``conv1``) or the
            reverse, naming the file and both stems.
    """
    args = _backbone_args(model_cfg)
    _check_stem(state, args, ckpt_path)
    expected = _expected_shapes(args)
    problem = None
    for key, shape in expected.items():
        if key not in state:
            problem = f'first mismatching key {key!r}: missing in the file'
            break
        got = tuple(state[key].shape)
        if got != shape:
            problem = (f'first mismatching key {key!r}: shape {got} in the '
                       f'file, {shape} expected')
            break
    if problem is None:
        extra = [k for k in state if k not in expected]
        if extra:
            problem = (f'first mismatching key {extra[0]!r}: not a key of '
                       f'the model ({len(extra)} unexpected keys)')
    if problem is None:
        return
    depth = infer_resnet_depth(state)
    guess = (f'; the file looks like a ResNet-{depth} backbone'
             if depth else '')
    raise ValueError(f'{ckpt_path}: backbone weights do not fit '
                     f'{_describe(args)}: {problem}{guess}.')


def format_summary(info: dict, out_path: Optional[str] = None,
                   layout: Optional[str] = None) -> str:
    """A one-paragraph, human-readable summary of an export."""
    lines = [f"source      : {info['source']}"]
    rnd = info['round']
    lines.append(f"round       : {rnd if rnd >= 0 else 'unknown'}")
    if info.get('num_clusters'):
        lines.append(f"cluster     : {info['cluster']} of "
                     f"{info['num_clusters']}")
    depth = info.get('depth', -1)
    lines.append(
        f"backbone    : {'ResNet-%d' % depth if depth > 0 else 'unknown'}")
    lines.append(f"keys        : {info['num_keys']}")
    lines.append(f"parameters  : {info['num_params']:,}")
    if out_path is not None:
        lines.append(f'written     : {out_path} (layout {layout})')
    return '\n'.join(lines)
