"""Tiny datasets made by the tests."""
import gzip
import os.path as osp

import numpy as np


def _write_idx(path: str, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim])
    header += b''.join(int(d).to_bytes(4, 'big') for d in arr.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def fake_images(num: int, seed: int, size: int = 28):
    """Grey images whose pattern depends on the label (10 classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % 10
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size]
    imgs = np.empty((num, size, size), np.uint8)
    for i, c in enumerate(labels):
        freq = 1 + c % 5
        base = 127 + 100 * np.sin(freq * (xx if c < 5 else yy) / 4.0)
        imgs[i] = np.clip(base + rng.normal(0, 20, (size, size)), 0, 255)
    return imgs, labels.astype(np.uint8)


def write_fake_fashion_mnist(root: str, num_train: int = 120,
                             num_test: int = 60) -> None:
    """Write ``{train,t10k}-{images,labels}`` IDX.gz files under ``root``."""
    for split, n, seed in (('train', num_train, 0), ('t10k', num_test, 1)):
        imgs, labels = fake_images(n, seed)
        _write_idx(osp.join(root, f'{split}-images-idx3-ubyte.gz'), imgs)
        _write_idx(osp.join(root, f'{split}-labels-idx1-ubyte.gz'), labels)
