"""Feature-cluster partitioner: heterogeneity from features, not labels."""
from typing import Optional, Tuple

import numpy as np

from decssl_mm.registry import PARTITIONERS
from .base import BasePartitioner
from .dirichlet import dirichlet_assignment
from .partition import Partition
from .utils import check_int, check_positive_float, group_assignment

__all__ = ['FeatureCluster', 'kmeans']

_MODES = ('dirichlet', 'one_per_client')
_CHUNK = 1 << 16


def _nearest(x: np.ndarray, centers: np.ndarray,
             x_sq: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest center, in chunks."""
    ids = np.empty(x.shape[0], dtype=np.int64)
    dist = np.empty(x.shape[0], dtype=np.float64)
    c_sq = np.einsum('ij,ij->i', centers, centers)
    for lo in range(0, x.shape[0], _CHUNK):
        hi = min(lo + _CHUNK, x.shape[0])
        d = x_sq[lo:hi, None] - 2.0 * (x[lo:hi] @ centers.T) + c_sq[None]
        ids[lo:hi] = np.argmin(d, axis=1)
        dist[lo:hi] = np.maximum(d[np.arange(hi - lo), ids[lo:hi]], 0.0)
    return ids, dist


def _kmeans_pp(x: np.ndarray, x_sq: np.ndarray, k: int,
               rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each new center is drawn with probability
    proportional to the squared distance to the closest chosen center."""
    n = x.shape[0]
    centers = np.empty((k, x.shape[1]), dtype=x.dtype)
    first = int(rng.integers(n))
    centers[0] = x[first]
    closest = np.maximum(x_sq - 2.0 * (x @ x[first]) + x_sq[first], 0.0)
    for j in range(1, k):
        total = closest.sum()
        if total > 0:
            pick = int(np.searchsorted(
                np.cumsum(closest), rng.random() * total, side='right'))
            pick = min(pick, n - 1)
        else:  # all points coincide with chosen centers
            pick = int(rng.integers(n))
        centers[j] = x[pick]
        dist = np.maximum(x_sq - 2.0 * (x @ x[pick]) + x_sq[pick], 0.0)
        np.minimum(closest, dist, out=closest)
    return centers


def kmeans(features: np.ndarray,
           num_clusters: int,
           rng: np.random.Generator,
           max_iter: int = 100,
           tol: float = 1e-4) -> Tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding, in numpy.

    Empty clusters are re-seeded with the points farthest from their
    centers. Iteration stops when no assignment changes, when the total
    squared center shift falls below ``tol`` times the mean per-dimension
    variance of the data, or after ``max_iter`` iterations.

    Args:
        features (np.ndarray): ``(N, D)`` float array.
        num_clusters (int): Number of clusters ``k <= N``.
        rng (np.random.Generator): Random source (seeding only).
        max_iter (int): Maximum number of Lloyd iterations. Defaults to 100.
        tol (float): Relative shift tolerance. Defaults to 1e-4.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(ids, centers)``: the ``(N,)``
        cluster id of every sample and the ``(k, D)`` centers.
    """
    x = np.asarray(features)
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64)
    x_sq = np.einsum('ij,ij->i', x, x).astype(np.float64)
    threshold = tol * float(np.mean(np.var(x, axis=0)))
    centers = _kmeans_pp(x, x_sq, num_clusters, rng)
    ids, dist = _nearest(x, centers, x_sq)
    for _ in range(max_iter):
        counts = np.bincount(ids, minlength=num_clusters)
        order = np.argsort(ids, kind='stable')
        starts = np.cumsum(counts) - counts
        nonempty = counts > 0
        new = centers.copy()
        sums = np.add.reduceat(
            x[order].astype(np.float64), starts[nonempty], axis=0)
        new[nonempty] = sums / counts[nonempty, None]
        empty = np.flatnonzero(~nonempty)
        if empty.size:
            far = np.argsort(-dist, kind='stable')[:empty.size]
            new[empty[:far.size]] = x[far]
        shift = float(((new - centers)**2).sum())
        centers = new
        new_ids, dist = _nearest(x, centers, x_sq)
        changed = np.any(new_ids != ids)
        ids = new_ids
        if not changed or shift <= threshold:
            break
    return ids, centers


@PARTITIONERS.register_module()
class FeatureCluster(BasePartitioner):
    """Cluster feature vectors with k-means, then split by cluster id.

    Heterogeneity without labels: samples are grouped by k-means (k-means++
    seeding from ``seed``, at most ``max_iter`` Lloyd iterations) on the
    given ``(N, D)`` features, e.g. embeddings of a pretrained encoder, and
    the cluster ids play the role of labels:

    - ``mode='dirichlet'``: the :class:`Dirichlet` scheme over cluster ids
      (``alpha``, ``min_size``, ``max_tries`` as there);
    - ``mode='one_per_client'``: client ``k`` holds cluster ``k``;
      ``num_clusters`` must equal ``num_clients``. A cluster, hence a
      client, can only be empty when many feature vectors coincide.

    The keys passed as ``labels`` are only counted and fingerprinted.

    Args:
        num_clients (int): Number of clients ``K``.
        num_clusters (int, optional): Number of k-means clusters; defaults
            to ``num_clients``.
        mode (str): ``'dirichlet'`` or ``'one_per_client'``.
            Defaults to ``'dirichlet'``.
        alpha (float): Dirichlet concentration for ``'dirichlet'``, > 0.
            Defaults to 1.0.
        min_size (int): Smallest client size for ``'dirichlet'``.
            Defaults to 1.
        max_tries (int): Dirichlet redraws for ``min_size``. Defaults to 100.
        max_iter (int): Maximum k-means iterations. Defaults to 100.
        tol (float): k-means relative tolerance. Defaults to 1e-4.
        seed (int): Random seed. Defaults to 0.
    """

    def __init__(self,
                 num_clients: int,
                 num_clusters: Optional[int] = None,
                 mode: str = 'dirichlet',
                 alpha: float = 1.0,
                 min_size: int = 1,
                 max_tries: int = 100,
                 max_iter: int = 100,
                 tol: float = 1e-4,
                 seed: int = 0):
        super().__init__(num_clients, seed)
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        self.mode = mode
        self.num_clusters = (self.num_clients if num_clusters is None else
                             check_int(num_clusters, 'num_clusters', 1))
        if mode == 'one_per_client' and self.num_clusters != self.num_clients:
            raise ValueError(
                f"num_clusters={self.num_clusters} must equal num_clients="
                f"{self.num_clients} with mode='one_per_client'")
        self.alpha = check_positive_float(alpha, 'alpha')
        self.min_size = check_int(min_size, 'min_size', minimum=0)
        self.max_tries = check_int(max_tries, 'max_tries', minimum=1)
        self.max_iter = check_int(max_iter, 'max_iter', minimum=1)
        self.tol = check_positive_float(tol, 'tol')

    def params(self) -> dict:
        """See :meth:`BasePartitioner.params`."""
        return dict(
            num_clients=self.num_clients,
            num_clusters=self.num_clusters,
            mode=self.mode,
            alpha=self.alpha,
            min_size=self.min_size,
            max_tries=self.max_tries,
            max_iter=self.max_iter,
            tol=self.tol)

    def cluster(self, features: np.ndarray,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """k-means cluster id of every sample.

        Args:
            features (np.ndarray): ``(N, D)`` finite float array.
            rng (np.random.Generator, optional): Random source; defaults to
                a fresh generator seeded with ``seed``.

        Returns:
            np.ndarray: ``(N,)`` ``int64`` cluster ids in
            ``[0, num_clusters)``.
        """
        feats = np.asarray(features)
        if feats.ndim != 2 or feats.dtype.kind not in 'iuf':
            raise ValueError('features must be a numeric (N, D) array, got '
                             f'shape {feats.shape} dtype {feats.dtype}')
        if not np.all(np.isfinite(feats)):
            raise ValueError('features contains NaN or inf values')
        if self.num_clusters > feats.shape[0]:
            raise ValueError(f'num_clusters={self.num_clusters} exceeds the '
                             f'number of samples ({feats.shape[0]})')
        rng = self.make_rng() if rng is None else rng
        ids, _ = kmeans(feats, self.num_clusters, rng, self.max_iter,
                        self.tol)
        return ids

    def partition(self,
                  labels: np.ndarray,
                  features: Optional[np.ndarray] = None) -> Partition:
        """See :meth:`BasePartitioner.partition`."""
        keys = self._check_labels(labels)
        if features is None:
            raise ValueError('features is required by FeatureCluster: pass '
                             'an (N, D) array of feature vectors')
        if np.shape(features)[0] != keys.size:
            raise ValueError(f'features has {np.shape(features)[0]} rows but '
                             f'labels has {keys.size} entries')
        rng = self.make_rng()
        ids = self.cluster(features, rng)
        if self.mode == 'one_per_client':
            assign = ids
        else:
            assign = dirichlet_assignment(
                ids,
                self.num_clusters,
                self.num_clients,
                self.alpha,
                rng,
                min_size=self.min_size,
                max_tries=self.max_tries)
        clients, dropped = group_assignment(assign, self.num_clients)
        return self._make_partition(clients, keys, dropped)
