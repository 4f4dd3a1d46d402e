"""Shared fixtures: tiny data written by the tests themselves."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Small, deterministic CPU runs; one thread a worker under pytest-xdist
# (``-n 2`` on 2 cores), two otherwise.
os.environ.setdefault('OMP_NUM_THREADS',
                      '1' if os.environ.get('PYTEST_XDIST_WORKER') else '2')


@pytest.fixture(scope='session')
def fmnist_root(tmp_path_factory):
    """A tiny Fashion-MNIST in the Debian package's gzip IDX layout."""
    from _helpers.data import write_fake_fashion_mnist
    root = tmp_path_factory.mktemp('fmnist')
    write_fake_fashion_mnist(str(root), num_train=120, num_test=60)
    return str(root)
