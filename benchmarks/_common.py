"""Shared pieces of the benchmark scripts."""
import os
import os.path as osp
import sys
import tempfile
import time

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
    """A minimal mmengine hook counting images and wall time of training."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.images = 0
        self.t0 = None
        self.seconds = None

    def before_train(self, runner) -> None:
        self.t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.images += len(data_batch['data_samples'])

    def after_train(self, runner) -> None:
        self.seconds = time.perf_counter() - self.t0

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def as_hook(watch: Stopwatch):
    from mmengine.hooks import Hook

    class _Hook(Hook):
        priority = 'VERY_LOW'

        def before_train(self, runner):
            watch.before_train(runner)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            watch.after_train_iter(runner, batch_idx, data_batch, outputs)

        def after_train(self, runner):
            watch.after_train(runner)

    return _Hook()


def rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quiet_env() -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '2')
