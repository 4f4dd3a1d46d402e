"""Write FMNIST-Det, the detection / instance segmentation set of the
downstream evaluation (docs/downstream.md, "FMNIST-Det").

    python tools/dataset_converters/make_fmnist_det.py [OUT_DIR]
        [--num-train 2000] [--num-val 400] [--size 96] [--seed 0]
        [--fmnist-root /usr/share/datasets/fashion-mnist]

OUT_DIR (default data/fmnist_det) gets ``images/<site>/*.png`` and
``annotations/{train,val}.json`` (COCO boxes, RLE masks, categories and a
``source_id`` per image), the layout of ``WarehouseDataset`` read by
``configs/downstream/fmnist_det/``. Offline, deterministic by seed.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', nargs='?', default='data/fmnist_det')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=400)
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--fmnist-root', default='/usr/share/datasets/fashion-mnist',
        help='folder of the Fashion-MNIST IDX files')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from decssl_mm.datasets.fmnist_det import make_fmnist_det
    try:
        out = make_fmnist_det(
            args.out_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            size=args.size,
            seed=args.seed,
            fmnist_root=args.fmnist_root)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f"wrote {out['train_json']} ({args.num_train} images) and "
          f"{out['val_json']} ({args.num_val} images); sites "
          f"{list(out['sources'])}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
