"""Write a tiny warehouse-style COCO dataset to try the downstream configs.

    python tools/misc/make_tiny_warehouse.py OUT_DIR [--num-images 8]
        [--size 64] [--num-sources 2] [--num-val 2] [--seed 0]

OUT_DIR gets ``images/<source>/*.png`` and ``annotations/{train,val}.json``
(boxes, polygon masks and a ``source_id`` per image), the layout of
``WarehouseDataset``; e.g. ``--cfg-options train_dataloader.dataset.data_root=
OUT_DIR/ val_dataloader.dataset.data_root=OUT_DIR/ ...``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--num-sources', type=int, default=2)
    parser.add_argument('--num-val', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    from decssl_mm.datasets.tiny_coco import make_tiny_coco
    out = make_tiny_coco(
        args.out_dir,
        num_images=args.num_images,
        size=args.size,
        num_sources=args.num_sources,
        seed=args.seed,
        num_val=args.num_val)
    print(f"wrote {out['train_json']} and {out['val_json']}: "
          f"classes {list(out['classes'])}, sources {list(out['sources'])}")


if __name__ == '__main__':
    main()
