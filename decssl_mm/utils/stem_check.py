"""Warn before training when the backbone's stem does not fit the crops.

``ResNet_CIFAR`` (the ``*_r18-cifar.py`` model bases) has a 3x3 stride-1
stem and no max-pool: made for 32 px images, it keeps every pixel of a
large crop through stage 1, which costs about 16x the compute of the
ImageNet stem (7x7 stride 2 and a max-pool: 4x fewer rows and columns).
The ImageNet stem (``ResNet``, the ``*_r18-imagenet.py`` bases) on 32 px
crops leaves a 1x1 map at stage 4. Neither is an error; both deserve a
WARNING that names the backbone, the crop size and the cost.
"""
import logging
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.logging import print_log

__all__ = ['training_crop_sizes', 'backbone_types', 'stem_mismatch',
           'warn_stem_mismatch']

#: Crops above this many pixels are "much larger" than 32 px.
LARGE_CROP = 64
#: Crops at or below this many pixels are "small" for the ImageNet stem.
SMALL_CROP = 48
#: Compute of the CIFAR stem relative to the ImageNet stem on one image
#: (4x the rows and 4x the columns from stage 1 on).
CIFAR_STEM_COST = 16
_CIFAR_TYPES = ('ResNet_CIFAR', )
_IMAGENET_TYPES = ('ResNet', 'ResNetV1c', 'ResNetV1d')
_SIZE_KEYS = ('crop_size', 'size', 'scale')


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def _largest_side(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in value):
        return int(max(value))
    return None


def training_crop_sizes(cfg: Any) -> List[int]:
    """Output sizes (largest side, px) of the crop/resize transforms of the
    training pipelines.

    Args:
        cfg (Config | dict): The config.

    Returns:
        list[int]: One size per crop or resize transform found.
    """
    loader = cfg.get('train_dataloader') if hasattr(cfg, 'get') else None
    sizes = []
    for node in _walk(loader):
        kind = str(node.get('type', ''))
        if 'Crop' not in kind and 'Resize' not in kind:
            continue
        for key in _SIZE_KEYS:
            side = _largest_side(node.get(key))
            if side is not None:
                sizes.append(side)
                break
    return sizes


def backbone_types(cfg: Any) -> List[str]:
    """Types of the backbones of ``cfg.model`` (nested models included)."""
    model = cfg.get('model') if hasattr(cfg, 'get') else None
    found = []
    for node in _walk(model):
        backbone = node.get('backbone')
        if isinstance(backbone, dict) and 'type' in backbone:
            found.append(str(backbone['type']).split('.')[-1])
    return found


def stem_mismatch(cfg: Any) -> Optional[str]:
    """The warning for ``cfg``, or None when stem and crops fit.

    Args:
        cfg (Config | dict): A training config.

    Returns:
        str | None: The message.
    """
    sizes = training_crop_sizes(cfg)
    if not sizes:
        return None
    crop = max(sizes)
    for kind in backbone_types(cfg):
        if kind in _CIFAR_TYPES and crop > LARGE_CROP:
            per_image = (crop / 32)**2
            return (
                f'model.backbone {kind} has the CIFAR-form stem (3x3 '
                f'stride 1, no max-pool: for 32 px images) but the training '
                f'crops are {crop} px: every image costs about '
                f'{CIFAR_STEM_COST}x the compute of the ImageNet stem '
                f'(type=\'ResNet\', the *_r18-imagenet.py model bases) and '
                f'{per_image:.0f}x that of a 32 px image. Set '
                "model.backbone.type='ResNet' unless this is intended.")
        if kind in _IMAGENET_TYPES and crop <= SMALL_CROP:
            stage4 = max(1, -(-crop // 32))
            return (
                f'model.backbone {kind} has the ImageNet stem (7x7 stride 2 '
                f'and a max-pool) but the training crops are {crop} px: '
                f'stage 4 sees a {stage4}x{stage4} map, 1/{CIFAR_STEM_COST} '
                'of the positions the CIFAR-form stem keeps. Set '
                "model.backbone.type='ResNet_CIFAR' (the *_r18-cifar.py "
                'model bases) unless this is intended.')
    return None


def warn_stem_mismatch(cfg: Any) -> Optional[str]:
    """Log :func:`stem_mismatch` at WARNING, if any; return it."""
    message = stem_mismatch(cfg)
    if message is not None:
        print_log(message, logger='current', level=logging.WARNING)
    return message
