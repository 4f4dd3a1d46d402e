"""Cost per image of ResNet_CIFAR vs ResNet (ImageNet stem) at 32 px.

Times forward + backward of mmpretrain's ``ResNet`` (7x7 stride-2 stem and
max-pool: a 32 px image is 1x1 at stage 4) and ``ResNet_CIFAR`` (3x3
stride-1 stem, no max-pool: 4x4 at stage 4) on random 32 px batches, in
training mode (BatchNorm statistics updated). The two run in pairs, in
orders AB, BA, AB, ... (A = ResNet); each pair's ratio of milliseconds per
image ResNet_CIFAR / ResNet is printed and the summary is the median of the
pair ratios with their range.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_backbone_stem.py \\
        [--depth 18] [--width 64] [--batch 64] [--iters 3] [--pairs 5]

``--width`` is the base (and stem) channels: 64 in the pretraining
configs and the demo, 16 in the study configs. ``--threads`` (default 1)
sets torch's intra-op threads.
"""
import argparse
import time

from _common import machine_line, run_pairs


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--depth', type=int, default=18)
    p.add_argument('--width', type=int, default=64,
                   help='base and stem channels')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--size', type=int, default=32, help='image side (px)')
    p.add_argument('--iters', type=int, default=3,
                   help='timed forward+backward passes per measurement')
    p.add_argument('--pairs', type=int, default=5,
                   help='pairs of measurements, orders AB, BA, AB, ...')
    p.add_argument('--threads', type=int, default=1,
                   help='torch intra-op threads')
    return p.parse_args()


def build(kind: str, args: argparse.Namespace):
    """The backbone ``kind`` (``'ResNet'`` or ``'ResNet_CIFAR'``)."""
    from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
    cls = {'ResNet': ResNet, 'ResNet_CIFAR': ResNet_CIFAR}[kind]
    model = cls(depth=args.depth, base_channels=args.width,
                stem_channels=args.width)
    model.train()  # BatchNorm in training mode; returns None in mmpretrain
    return model


def step(model, images) -> tuple:
    """One forward + backward pass; the last stage's output shape."""
    out = model(images)[-1]
    out.float().mean().backward()
    model.zero_grad(set_to_none=True)
    return tuple(out.shape)


def ms_per_image(model, images, iters: int) -> float:
    """Milliseconds per image of ``iters`` timed passes (after one)."""
    step(model, images)  # warm-up: allocations, kernel selection
    t0 = time.perf_counter()
    for _ in range(iters):
        step(model, images)
    seconds = time.perf_counter() - t0
    return 1000.0 * seconds / (iters * images.shape[0])


def main() -> None:
    args = parse_args()
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(machine_line())
    images = torch.randn(args.batch, 3, args.size, args.size)
    models = {k: build(k, args) for k in ('ResNet', 'ResNet_CIFAR')}
    for kind, model in models.items():
        print(f'{kind}: stage-4 output {step(model, images)} for '
              f'{args.size} px input')
    runs = run_pairs(
        lambda i: ms_per_image(models['ResNet'], images, args.iters),
        lambda i: ms_per_image(models['ResNet_CIFAR'], images, args.iters),
        args.pairs, 'ResNet', 'ResNet_CIFAR')
    print(f'ResNet-{args.depth}, base/stem channels {args.width}, batch '
          f'{args.batch}, {args.size} px, forward+backward, '
          f'{args.iters} passes per measurement, torch threads '
          f'{torch.get_num_threads()}')
    for line in runs.lines(' ms/img', '.2f'):
        print(line)
    print(runs.summary('ms per image'))


if __name__ == '__main__':
    main()
