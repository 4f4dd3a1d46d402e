"""FeatARC vs FedAvg (Dec-SSL) on highly non-IID Fashion-MNIST, small scale.

    OMP_NUM_THREADS=1 python benchmarks/bench_featarc_vs_fedavg.py \
        [--algo simclr] [--alpha 0.02] [--clients 10] [--subset 6000] \
        [--rounds 5] [--base-channels 8] [--align-weight 1.0] \
        [--pairs 2] [--work-dir work_dirs/bench_featarc]

Both runs use the project's configs (``configs/decssl/<algo>_r18_fmnist_
dir0.1.py`` and ``configs/featarc/<algo>_r18_fmnist_dir0.1.py``), shrunk
the same way: the first ``--subset`` training images, a Dirichlet(alpha)
split over ``--clients`` clients, a ResNet-18 with ``--base-channels``
base channels, one local epoch per round, every client every round. The
feature quality of the final model (FedAvg: the global model; FeatARC: the
exported cluster chosen by the loop's rule, and every cluster for
information) is the weighted-kNN top-1 (k=200, T=0.1) with the training
subset as the bank and the full test split as queries
(:mod:`decssl_mm.evaluation.knn`). The untrained model is evaluated
too, as the floor, in both forms: the model's own initialisation and
PyTorch's default one (:func:`decssl_mm.evaluation.untrained.
untrained_metrics`). Test accuracy is only reported, never used to choose
anything.

The two methods run in ``--pairs`` pairs, in orders AB, BA, AB, ...
(A = FedAvg); pair ``i`` uses seed ``--seed + i`` for both methods. Each
pair's training-time ratio FeatARC / FedAvg and kNN top-1 difference
FeatARC - FedAvg are printed; the summary gives their paired medians and
ranges.
"""
import argparse
import os.path as osp
import time

from _common import (ROOT, PairedRuns, fmnist_root, machine_line,
                     run_pairs, set_width)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--algo', default='simclr')
    p.add_argument('--alpha', type=float, default=0.02)
    p.add_argument('--clients', type=int, default=10)
    p.add_argument('--subset', type=int, default=6000)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--local-epochs', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--base-channels', type=int, default=8)
    p.add_argument('--align-weight', type=float, default=1.0)
    p.add_argument('--num-clusters', type=int, default=2)
    p.add_argument('--seed', type=int, default=0,
                   help='seed of initialisation, order and augmentation of '
                   'the first pair (pair i uses seed + i)')
    p.add_argument('--pairs', type=int, default=2,
                   help='pairs of runs, orders AB, BA, AB, ...')
    p.add_argument('--partition-seed', type=int, default=0)
    p.add_argument('--work-dir', default='work_dirs/bench_featarc')
    return p.parse_args()


def shrunk(config: str, args, data_root: str, work_dir: str):
    """The config with the benchmark's data, model size and schedule."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    model = cfg.model.algorithm if cfg.model.type == 'FeatARC' else cfg.model
    set_width(model, args.base_channels)
    if cfg.model.type == 'FeatARC':
        cfg.model.align_weight = args.align_weight
        cfg.train_cfg.server.num_clusters = args.num_clusters
    train = cfg.train_dataloader
    train.batch_size = args.batch_size
    train.num_workers = 0
    train.persistent_workers = False
    train.dataset.dataset.data_root = data_root
    train.dataset.dataset.subset = args.subset
    train.dataset.partition = dict(type='Dirichlet',
                                   num_clients=args.clients,
                                   alpha=args.alpha, min_size=2,
                                   seed=args.partition_seed)
    cfg.train_cfg.rounds = args.rounds
    cfg.train_cfg.local_epochs = args.local_epochs
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', T_max=args.rounds, by_epoch=True,
             begin=0, end=args.rounds)
    ]
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    cfg.default_hooks.logger.interval = 50
    cfg.default_hooks.checkpoint.interval = args.rounds
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.log_level = 'WARNING'
    cfg.work_dir = work_dir
    return cfg


def knn_loaders(args, data_root: str):
    from decssl_mm.evaluation.knn import build_knn_dataloader
    pipeline = [
        dict(type='GrayToRGB'),
        dict(type='Resize', scale=(32, 32)),
        dict(type='PackInputs')
    ]

    def loader(split, subset):
        return build_knn_dataloader(
            dict(batch_size=512, num_workers=0,
                 collate_fn=dict(type='default_collate'),
                 dataset=dict(type='FashionMNISTGz', data_root=data_root,
                              split=split, subset=subset,
                              pipeline=pipeline)))

    return loader('train', args.subset), loader('test', None)


def top1(model, loaders) -> float:
    from decssl_mm.evaluation.knn import knn_evaluate
    return knn_evaluate(model, *loaders, k=200, temperature=0.1,
                        topk=(1, ))['top1']


def run(config: str, args, data_root: str, loaders, name: str) -> dict:
    from mmengine.runner import Runner
    cfg = shrunk(config, args, data_root,
                 osp.join(args.work_dir, name))
    runner = Runner.from_cfg(cfg)
    t0 = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - t0
    out = {'seconds': seconds, 'top1': top1(runner.model, loaders),
           'sizes': runner.train_loop.client_sizes.tolist()}
    server = runner.train_loop.server
    if hasattr(server, 'clusters'):
        model = runner.model
        per_cluster = []
        for state in server.clusters:
            model.load_state_dict(state)
            per_cluster.append(top1(model, loaders))
        model.load_state_dict(server.clusters[server.chosen])
        out.update(chosen=server.chosen, clusters=per_cluster,
                   assignment=server.assignment.tolist())
    return out


def main() -> None:
    args = parse_args()
    import decssl_mm  # noqa: F401
    import decssl_mm.models.featarc  # noqa: F401
    from mmengine.registry import init_default_scope
    from decssl_mm.evaluation.untrained import untrained_metrics
    init_default_scope('decssl_mm')
    print(machine_line())
    data_root = fmnist_root()
    loaders = knn_loaders(args, data_root)
    base = f'configs/decssl/{args.algo}_r18_fmnist_dir0.1.py'
    featarc = f'configs/featarc/{args.algo}_r18_fmnist_dir0.1.py'

    cfg = shrunk(base, args, data_root, osp.join(args.work_dir, 'init'))
    floors = untrained_metrics(cfg, lambda m: {'top1': top1(m, loaders)},
                               seed=args.seed)

    results = {'FedAvg': [], 'FeatARC': []}

    def method(name: str, config: str):
        def run_pair(i: int) -> float:
            pair_args = argparse.Namespace(**dict(vars(args),
                                                  seed=args.seed + i))
            r = run(config, pair_args, data_root, loaders,
                    f'{name.lower()}_{i}')
            results[name].append(r)
            return r['seconds']
        return run_pair

    times = run_pairs(method('FedAvg', base), method('FeatARC', featarc),
                      args.pairs, 'FedAvg', 'FeatARC')
    sizes = results['FedAvg'][0]['sizes']
    print(f'\n{args.algo}, Fashion-MNIST first {args.subset} train images, '
          f'Dirichlet alpha={args.alpha}, {args.clients} clients '
          f'(sizes {sizes}), {args.rounds} rounds x '
          f'{args.local_epochs} local epoch, ResNet-18 x{args.base_channels}'
          f' base channels; kNN k=200 T=0.1, bank = train subset, queries ='
          f' test split; seeds {args.seed}..{args.seed + args.pairs - 1}')
    print(f"untrained (seed {args.seed}): kNN top-1 "
          f"{floors['untrained_init']['top1']:.2f} (the model's own "
          f"initialisation), {floors['untrained_default']['top1']:.2f} "
          "(PyTorch's default initialisation)")
    for i, order in enumerate(times.orders):
        fa, fe = results['FedAvg'][i], results['FeatARC'][i]
        print(f"pair {i + 1} ({order}, seed {args.seed + i}): kNN top-1 "
              f"FedAvg {fa['top1']:.2f}, FeatARC {fe['top1']:.2f} "
              f"(exported cluster {fe['chosen']}, per cluster "
              f"{[round(x, 2) for x in fe['clusters']]}); train s FedAvg "
              f"{fa['seconds']:.0f}, FeatARC {fe['seconds']:.0f}, ratio "
              f"{times.ratios[i]:.3f}")
    top1s = PairedRuns([r['top1'] for r in results['FedAvg']],
                       [r['top1'] for r in results['FeatARC']],
                       times.orders, 'FedAvg', 'FeatARC')
    print(top1s.summary('kNN top-1 (points)', kind='difference'))
    print(times.summary('training time'))


if __name__ == '__main__':
    main()
