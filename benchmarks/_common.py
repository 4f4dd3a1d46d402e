"""Shared pieces of the benchmark scripts."""
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tests'))

FMNIST = '/usr/share/datasets/fashion-mnist'


def fmnist_root() -> str:
    """The Debian package's folder, or a synthetic stand-in."""
    if osp.isfile(osp.join(FMNIST, 'train-images-idx3-ubyte.gz')):
        return FMNIST
    from _helpers.data import write_fake_fashion_mnist
    d = tempfile.mkdtemp(prefix='fmnist_')
    write_fake_fashion_mnist(d, num_train=6000, num_test=1000)
    print(f'(dataset-fashion-mnist not installed: synthetic data in {d})')
    return d


class Stopwatch:
    """A minimal mmengine hook counting images and wall time of training.

    Also the time inside the local steps (from ``before_train_iter`` to
    ``after_train_iter``: the model's forward, backward and update, the
    same work in a centralized and a federated run) and so the time
    outside them (data loading and, in a federated run, everything a
    client and a round cost besides their steps).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.images = 0
        self.iters = 0
        self.t0 = None
        self.seconds = None
        self.step_seconds = 0.0
        self._step_t0 = None

    def before_train(self, runner) -> None:
        self.t0 = time.perf_counter()

    def before_train_iter(self, runner, batch_idx=None,
                          data_batch=None) -> None:
        self._step_t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self._step_t0 is not None:
            self.step_seconds += time.perf_counter() - self._step_t0
            self._step_t0 = None
        self.images += len(data_batch['data_samples'])
        self.iters += 1

    def after_train(self, runner) -> None:
        self.seconds = time.perf_counter() - self.t0

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    @property
    def outside_seconds(self) -> float:
        """Training wall time outside the local steps."""
        return self.seconds - self.step_seconds


def as_hook(watch: Stopwatch):
    from mmengine.hooks import Hook

    class _Hook(Hook):
        priority = 'VERY_LOW'

        def before_train(self, runner):
            watch.before_train(runner)

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            watch.before_train_iter(runner, batch_idx, data_batch)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            watch.after_train_iter(runner, batch_idx, data_batch, outputs)

        def after_train(self, runner):
            watch.after_train(runner)

    return _Hook()


def set_width(model, width: int) -> None:
    """A ResNet model config of ``width`` base (and stem) channels; the
    neck's input follows (8 x width for ResNet-18/34, 32 x width deeper).

    Args:
        model (ConfigDict): A model config with ``backbone`` and ``neck``.
        width (int): Base channels.
    """
    bb = model.backbone
    bb.base_channels = width
    bb.stem_channels = width
    if 'in_channels' in model.neck:
        model.neck.in_channels = width * (8 if bb.depth in (18, 34) else 32)


def rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quiet_env() -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '2')


# ------------------------------------------------------------ A vs B runs
def pair_orders(pairs: int) -> List[str]:
    """Run order of each pair: ``'AB'``, ``'BA'``, ``'AB'``, ...

    Alternating cancels a drift of the machine (warm-up, other load) that
    would otherwise favour whichever side always runs first.

    Args:
        pairs (int): Number of pairs, >= 1.

    Returns:
        list[str]: One order per pair.
    """
    if pairs < 1:
        raise ValueError(f'pairs must be >= 1, got {pairs}')
    return ['AB' if i % 2 == 0 else 'BA' for i in range(pairs)]


@dataclass
class PairedRuns:
    """Measurements of A and B taken in pairs, and their per-pair ratios.

    Args:
        a (list[float]): The value of A in every pair.
        b (list[float]): The value of B in every pair.
        orders (list[str]): ``'AB'`` or ``'BA'`` per pair.
        name_a (str): Name of A. Defaults to ``'A'``.
        name_b (str): Name of B. Defaults to ``'B'``.
    """

    a: List[float]
    b: List[float]
    orders: List[str]
    name_a: str = 'A'
    name_b: str = 'B'

    @property
    def ratios(self) -> List[float]:
        """list[float]: ``b / a`` of every pair."""
        return [b / a for a, b in zip(self.a, self.b)]

    @property
    def differences(self) -> List[float]:
        """list[float]: ``b - a`` of every pair."""
        return [b - a for a, b in zip(self.a, self.b)]

    @property
    def median(self) -> float:
        """float: Median of the pair ratios."""
        return statistics.median(self.ratios)

    @property
    def range(self) -> Tuple[float, float]:
        """tuple[float, float]: Smallest and largest pair ratio."""
        return min(self.ratios), max(self.ratios)

    def lines(self, unit: str = '', fmt: str = '.3f') -> List[str]:
        """One line per pair: order, both values and the ratio."""
        out = []
        for i, (o, a, b, r) in enumerate(
                zip(self.orders, self.a, self.b, self.ratios)):
            out.append(f'pair {i + 1} ({o}): {self.name_a} {a:{fmt}}{unit}, '
                       f'{self.name_b} {b:{fmt}}{unit}, ratio {r:.3f}')
        return out

    def summary(self, what: str, kind: str = 'ratio') -> str:
        """``what``: the paired median with its range and the pairs.

        Args:
            what (str): What was measured, e.g. ``'images/s'``.
            kind (str): ``'ratio'`` (``b / a``, default) or
                ``'difference'`` (``b - a``).

        Returns:
            str: The summary line.
        """
        if kind == 'ratio':
            values, op = self.ratios, '/'
        elif kind == 'difference':
            values, op = self.differences, '-'
        else:
            raise ValueError(
                f"kind must be 'ratio' or 'difference', got {kind!r}")
        return (f'{what} ({self.name_b} {op} {self.name_a}): paired median '
                f'{statistics.median(values):.3f}, range '
                f'{min(values):.3f} to {max(values):.3f} over '
                f'{len(values)} pairs (orders {",".join(self.orders)})')


def run_pairs(run_a: Callable[[int], float],
              run_b: Callable[[int], float],
              pairs: int,
              name_a: str = 'A',
              name_b: str = 'B') -> PairedRuns:
    """Measure A and B ``pairs`` times each, in orders AB, BA, AB, ...

    Args:
        run_a (callable): ``run_a(pair_index)`` returns A's measurement.
        run_b (callable): ``run_b(pair_index)`` returns B's measurement.
        pairs (int): Number of pairs, >= 1.
        name_a (str): Name of A in the report. Defaults to ``'A'``.
        name_b (str): Name of B in the report. Defaults to ``'B'``.

    Returns:
        PairedRuns: The measurements and their ratios ``b / a``.
    """
    orders = pair_orders(pairs)
    a_vals, b_vals = [], []
    for i, order in enumerate(orders):
        if order == 'AB':
            a = run_a(i)
            b = run_b(i)
        else:
            b = run_b(i)
            a = run_a(i)
        a_vals.append(float(a))
        b_vals.append(float(b))
    return PairedRuns(a_vals, b_vals, orders, name_a, name_b)


def machine_info() -> dict:
    """Cores, threads, torch version and device of this process."""
    info = dict(
        cores=os.cpu_count(),
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else os.cpu_count(),
        omp_num_threads=os.environ.get('OMP_NUM_THREADS', 'unset'),
        python=platform.python_version())
    try:
        import torch
        info.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            device=(torch.cuda.get_device_name(0)
                    if torch.cuda.is_available() else
                    f'cpu ({platform.processor() or platform.machine()})'))
    except ImportError:
        info.update(torch='not installed', torch_threads=None, device='cpu')
    return info


def machine_line() -> str:
    """``machine: ...`` line of a benchmark report."""
    m = machine_info()
    return (f"machine: {m['cores']} cores ({m['usable_cores']} usable), "
            f"OMP_NUM_THREADS={m['omp_num_threads']}, torch threads "
            f"{m['torch_threads']}, torch {m['torch']}, python "
            f"{m['python']}, device {m['device']}")
