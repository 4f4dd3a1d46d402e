"""Export the ResNet backbone of a federated checkpoint for downstream use.

    python tools/model_converters/extract_backbone.py CKPT OUT
        [--layout {prefixed,bare}] [--cluster N]
        [--check-depth D | --check-config DOWNSTREAM_CONFIG]

``prefixed`` (default) writes ``{'state_dict': {'backbone.*': tensor},
'meta': {...}}`` for ``init_cfg=dict(type='Pretrained', checkpoint=OUT,
prefix='backbone.')``; ``bare`` writes the ResNet state dict itself. The
output holds tensors, strings and ints only (``torch.load(...,
weights_only=True)`` reads it). For FeatARC checkpoints ``--cluster N``
exports cluster model N instead of the chosen one. ``--check-depth`` /
``--check-config`` refuse a backbone whose keys or shapes do not fit (e.g.
a ResNet-18 checkpoint for a ResNet-50 config), naming the first mismatching
key: mmengine's ``Pretrained`` initialisation would only warn.

OUT must be a file path other than CKPT (the same file through another name
or link is refused too) and not a directory; it is written atomically (a
temporary file renamed over OUT), so a killed export never leaves a torn
file.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the backbone of a federated checkpoint')
    parser.add_argument('checkpoint', help='federated/mmengine checkpoint')
    parser.add_argument('out', help='output file')
    parser.add_argument(
        '--layout',
        choices=['prefixed', 'bare'],
        default='prefixed',
        help="'prefixed': {'state_dict': {'backbone.*'}, 'meta'} for "
        "init_cfg prefix='backbone.'; 'bare': plain ResNet keys")
    parser.add_argument(
        '--cluster',
        type=int,
        default=None,
        help='FeatARC: export this cluster model (default: the chosen one)')
    parser.add_argument(
        '--check-depth',
        type=int,
        default=None,
        help='fail unless the backbone is a ResNet of this depth')
    parser.add_argument(
        '--check-config',
        default=None,
        help='fail unless the backbone fits model.backbone of this config '
        '(e.g. a downstream config)')
    return parser.parse_args(argv)


def check_out_path(checkpoint: str, out: str) -> Optional[str]:
    """Why ``out`` cannot receive the backbone of ``checkpoint``, if so.

    Args:
        checkpoint (str): The input checkpoint.
        out (str): The requested output path.

    Returns:
        str or None: The error message; None when ``out`` is usable.
    """
    if osp.isdir(out) or out.endswith(('/', os.sep)):
        return (f'output path {out!r} is a directory; give the path of the '
                'file to write')
    if osp.exists(out) and osp.exists(checkpoint) and \
            osp.samefile(out, checkpoint):
        return (f'output path {out!r} is the input checkpoint '
                f'{checkpoint!r}; writing it would replace the checkpoint '
                'with its backbone. Give another output path')
    parent = osp.dirname(osp.abspath(out))
    if osp.exists(parent) and not osp.isdir(parent):
        return f'output path {out!r}: {parent!r} is not a directory'
    if osp.isdir(parent) and not os.access(parent, os.W_OK):
        return f'output path {out!r}: directory {parent!r} is not writable'
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    problem = check_out_path(args.checkpoint, args.out)
    if problem is not None:
        print(f'error: {problem}', file=sys.stderr)
        return 2
    from decssl_mm.evaluation.export import (check_backbone_compat,
                                             extract_backbone_state,
                                             format_summary, save_backbone)
    try:
        state, info = extract_backbone_state(args.checkpoint, args.cluster)
        if args.check_depth is not None:
            check_backbone_compat(state, args.check_depth, args.checkpoint)
        if args.check_config is not None:
            from mmengine.config import Config
            cfg = Config.fromfile(args.check_config)
            check_backbone_compat(state, cfg.model, args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    save_backbone(state, info, args.out, args.layout)
    print(format_summary(info, args.out, args.layout))
    return 0


if __name__ == '__main__':
    sys.exit(main())
