r"""Make a client partition, save it as JSON, print and plot its statistics.

From a config whose train_dataloader.dataset is a ClientPartitionedDataset:

    python tools/partition.py --config configs/my_cfg.py \
        --out work_dirs/partition.json --plot-dir work_dirs/partition

From a label array (.npy, one key per sample) and a partitioner recipe:

    python tools/partition.py --labels labels.npy \
        --recipe '{"type": "Dirichlet", "num_clients": 10, "alpha": 0.1}' \
        --out partition.json --plot-dir plots/

The table lists, per client, its size, number of distinct labels, label
entropy (nats) and earth mover's distance to the global label distribution
(see docs/partitions.md).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

_DESCRIPTION = __doc__


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--config',
        metavar='CFG',
        help='config file; the dataset at --dataset-key must be a '
        'ClientPartitionedDataset. Its partition (or partition_file) is '
        'used unless --recipe is given')
    source.add_argument(
        '--labels',
        metavar='NPY',
        help='.npy file with a 1-D array holding one label/key per sample '
        '(ints or strings); needs --recipe')
    parser.add_argument(
        '--recipe',
        metavar='JSON',
        help='partitioner config as JSON, e.g. \'{"type": "Dirichlet", '
        '"num_clients": 10, "alpha": 0.1, "seed": 0}\'; with --config it '
        'replaces the dataset\'s partition/partition_file')
    parser.add_argument(
        '--features',
        metavar='NPY',
        help='.npy file with an (N, D) feature array for feature-based '
        'partitioners (FeatureCluster); with --config it sets the dataset\'s '
        'features_file')
    parser.add_argument(
        '--dataset-key',
        default='train_dataloader.dataset',
        metavar='KEY',
        help='dotted path of the ClientPartitionedDataset in the config '
        '(default: %(default)s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=None,
        metavar='KEY=VALUE',
        help='override config entries, e.g. '
        'train_dataloader.dataset.partition.alpha=0.5 (values are parsed '
        'as JSON when possible, else kept as strings)')
    parser.add_argument(
        '--out', metavar='JSON', help='write the partition to this file')
    parser.add_argument(
        '--plot-dir',
        metavar='DIR',
        help='write client_label_heatmap.png (clients x labels, share of '
        'each client\'s samples) and client_sizes.png here')
    parser.add_argument(
        '--max-rows',
        type=int,
        default=50,
        metavar='N',
        help='show at most N clients in the table, 0 for all '
        '(default: %(default)s)')
    args = parser.parse_args(argv)
    if args.labels and not args.recipe:
        parser.error('--labels needs --recipe')
    if args.recipe:
        try:
            args.recipe = json.loads(args.recipe)
        except json.JSONDecodeError as e:
            parser.error(f'--recipe is not valid JSON: {e}')
        if not isinstance(args.recipe, dict) or 'type' not in args.recipe:
            parser.error('--recipe must be a JSON object with a "type"')
    if args.max_rows < 0:
        parser.error('--max-rows must be >= 0')
    return args


def _dotted_get(cfg, key: str):
    node = cfg
    for part in key.split('.'):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f'--dataset-key {key!r}: the config has no '
                             f'{part!r} there')
        node = node[part]
    return node


def partition_from_config(args: argparse.Namespace):
    """Build the ClientPartitionedDataset of a config; return its keys and
    partition."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        options = {}
        for item in args.cfg_options:
            if '=' not in item:
                raise ValueError(f'--cfg-options entry {item!r} is not '
                                 'KEY=VALUE')
            key, value = item.split('=', 1)
            options[key] = _parse_value(value)
        cfg.merge_from_dict(options)
    init_default_scope(cfg.get('default_scope', 'decssl_mm'))
    import decssl_mm.datasets  # noqa: F401  (registers the wrapper)
    from decssl_mm.registry import DATASETS

    ds_cfg = dict(_dotted_get(cfg.to_dict(), args.dataset_key))
    kind = str(ds_cfg.get('type', '')).split('.')[-1]
    if kind != 'ClientPartitionedDataset':
        raise ValueError(f'{args.dataset_key} of {args.config} is a '
                         f'{kind or "dataset without type"}, not a '
                         'ClientPartitionedDataset')
    if args.recipe:
        ds_cfg['partition'] = args.recipe
        ds_cfg.pop('partition_file', None)
    if args.features:
        ds_cfg['features_file'] = args.features
    ds_cfg['lazy_init'] = False
    dataset = DATASETS.build(ds_cfg)
    return dataset.split_keys, dataset.partition


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def partition_from_labels(args: argparse.Namespace):
    """Partition a saved label array with ``--recipe``."""
    from decssl_mm.partition import build_partition

    labels = np.load(args.labels, allow_pickle=False)
    features = (
        np.load(args.features, allow_pickle=False) if args.features else None)
    return labels, build_partition(args.recipe, labels, features)


def plot_stats(stats: dict, out_dir: str) -> Tuple[str, str]:
    """Write the clients x labels heatmap and the client size bar chart.

    Args:
        stats (dict): :meth:`Partition.stats` output.
        out_dir (str): Output directory (created).

    Returns:
        tuple[str, str]: Paths of the two PNG files.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    hist = stats['histograms'].astype(np.float64)
    sizes = stats['sizes']
    share = hist / np.maximum(sizes[:, None], 1)
    num_clients, num_classes = hist.shape

    fig, ax = plt.subplots(
        figsize=(min(4 + 0.25 * num_classes, 16),
                 min(3 + 0.25 * num_clients, 12)))
    image = ax.imshow(
        share, aspect='auto', interpolation='nearest', cmap='viridis',
        vmin=0.0, vmax=1.0)
    ax.set_xlabel('label')
    ax.set_ylabel('client')
    ax.set_title(f'label share per client\nmean entropy '
                 f'{stats["mean_entropy"]:.3f} nats, mean EMD '
                 f'{stats["mean_emd"]:.3f}', fontsize=10)
    if num_classes <= 40:
        ax.set_xticks(range(num_classes))
        ax.set_xticklabels([str(c) for c in stats['classes']], rotation=90)
    fig.colorbar(image, ax=ax, label='fraction of the client\'s samples')
    fig.tight_layout()
    heatmap = osp.join(out_dir, 'client_label_heatmap.png')
    fig.savefig(heatmap, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(min(4 + 0.15 * num_clients, 16), 4))
    ax.bar(np.arange(num_clients), sizes, width=0.9, color='tab:blue')
    ax.axhline(sizes.mean(), color='tab:red', lw=1, ls='--', label='mean')
    ax.set_xlabel('client')
    ax.set_ylabel('samples')
    ax.set_title(f'client sizes ({num_clients} clients, '
                 f'{int(sizes.sum())} samples, {stats["dropped"]} dropped)')
    ax.legend()
    fig.tight_layout()
    bars = osp.join(out_dir, 'client_sizes.png')
    fig.savefig(bars, dpi=100)
    plt.close(fig)
    return heatmap, bars


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from decssl_mm.partition import format_table

    if args.config:
        keys, part = partition_from_config(args)
    else:
        keys, part = partition_from_labels(args)
    stats = part.stats(keys)
    print(f'recipe: {json.dumps(part.recipe)}')
    print(format_table(stats, max_rows=args.max_rows or None))
    if args.out:
        part.save(args.out)
        print(f'partition written to {args.out}')
    if args.plot_dir:
        for path in plot_stats(stats, args.plot_dir):
            print(f'plot written to {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
