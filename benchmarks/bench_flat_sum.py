"""Folding one client model into the float64 running sum: flat vs per tensor.

A (per tensor): :class:`PerTensorSum.fold` (finiteness by one fused
``torch._foreach_norm`` over the model's tensors, then each tensor cast
to float64 and added into its float64 sum). B (flat): :class:`FlatWeightedSum.fold` (pack into a kept buffer,
one finiteness sum, chunked cast and add). Same tensors (the state dict of
a real mmpretrain backbone), same weights; each repeat times both, in
orders AB, BA, ...; each pair's ratio B / A of the times is printed and the
summary is their median with the range.

    .venv/bin/python benchmarks/bench_flat_sum.py [--depth 18] [--width 64]
        [--pairs 7]
"""
import argparse
import time

from _common import machine_line, quiet_env, run_pairs, spread_line


def state_of(depth: int, width: int) -> dict:
    """The floating state-dict tensors of a CIFAR-form ResNet."""
    import mmpretrain.models  # noqa: F401
    from mmpretrain.registry import MODELS
    net = MODELS.build(dict(type='ResNet_CIFAR', depth=depth,
                            base_channels=width, stem_channels=width))
    return {k: v.clone() for k, v in net.state_dict().items()
            if v.is_floating_point()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=18)
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument('--pairs', type=int, default=7)
    args = parser.parse_args()
    quiet_env()
    from decssl_mm.federated.aggregators.flat_sum import FlatWeightedSum
    from decssl_mm.federated.aggregators.model_sum import PerTensorSum
    print(machine_line())
    state = state_of(args.depth, args.width)
    tensors = list(state.values())
    print(f'ResNet_CIFAR-{args.depth}, width {args.width}: {len(tensors)} '
          f'tensors, {sum(t.numel() for t in tensors) / 1e6:.1f} M values')
    flat = FlatWeightedSum(list(state), state)
    plain = PerTensorSum(list(state), state)

    def per_tensor() -> None:
        assert plain.fold(state, 8.0)

    def timed(fn):
        def run(_: int) -> float:
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1e3
        return run

    per_tensor()  # warm-up: first-touch of both sides' memory
    flat.fold(state, 8.0)
    runs = run_pairs(timed(per_tensor), timed(lambda: flat.fold(state, 8.0)),
                     args.pairs, 'per tensor', 'flat')
    for line in runs.lines(' ms', '.1f'):
        print(line)
    print(runs.summary('ms a client') + f' {spread_line(runs.ratios)}')


if __name__ == '__main__':
    main()
