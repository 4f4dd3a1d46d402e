"""Dataset wrapper that splits a dataset among federated clients."""
import copy
import numbers
import os.path as osp
from typing import Any, List, Optional, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from torch.utils.data import Dataset

from decssl_mm.partition import Partition, build_partition, fingerprint_of
from decssl_mm.registry import DATASETS
from .seeding import seeded

__all__ = ['ClientPartitionedDataset', 'ClientSubset', 'dominant_category']

_METAINFO_PREFIX = 'metainfo:'


def dominant_category(instances: List[dict]) -> int:
    """Image-level category of a detection sample.

    The category (``bbox_label``) whose instances cover the largest total
    bounding-box area, instances with ``ignore_flag`` set (crowd boxes) left
    out; ties go to the smaller label.

    Args:
        instances (list[dict]): mmdet-style instances with ``bbox``
            (``[x1, y1, x2, y2]``) and ``bbox_label``.

    Returns:
        int: The dominant label, or -1 when there is no usable instance.
    """
    labels, areas = [], []
    for inst in instances or ():
        if inst.get('ignore_flag', 0) or 'bbox_label' not in inst:
            continue
        x1, y1, x2, y2 = (float(v) for v in inst['bbox'][:4])
        labels.append(int(inst['bbox_label']))
        areas.append(max(x2 - x1, 0.0) * max(y2 - y1, 0.0))
    if not labels:
        return -1
    labels = np.asarray(labels)
    uniq, inverse = np.unique(labels, return_inverse=True)
    totals = np.bincount(inverse, weights=np.asarray(areas))
    return int(uniq[int(np.argmax(totals))])


def _is_remote(path: str) -> bool:
    return '://' in path


def check_dataset_paths(cfg: dict, prefix: str = 'dataset') -> None:
    """Fail early, naming the key, when a config points at missing files.

    Checks ``data_root`` and ``ann_file`` (relative to ``data_root``) of the
    config and of nested wrapper configs (``dataset``/``datasets``). Remote
    paths (``s3://...``) are not checked.

    Args:
        cfg (dict): A dataset config.
        prefix (str): Name of ``cfg`` in error messages.
    """
    if not isinstance(cfg, dict):
        return
    data_root = cfg.get('data_root') or ''
    if data_root and not _is_remote(data_root) and not osp.isdir(data_root):
        raise FileNotFoundError(
            f'{prefix}.data_root {data_root!r} does not exist or is not a '
            'directory')
    ann_file = cfg.get('ann_file') or ''
    if ann_file and not _is_remote(ann_file):
        path = ann_file if osp.isabs(ann_file) or not data_root else \
            osp.join(data_root, ann_file)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{prefix}.ann_file {ann_file!r} does not exist '
                f'(looked for {path!r})')
    if isinstance(cfg.get('dataset'), dict):
        check_dataset_paths(cfg['dataset'], prefix + '.dataset')
    for i, sub in enumerate(cfg.get('datasets') or ()):
        check_dataset_paths(sub, f'{prefix}.datasets[{i}]')


class ClientSubset(Dataset):
    """The samples of one client, as a view of the wrapped dataset.

    Local index ``i`` maps to global index ``indices[i]`` of ``dataset``;
    items come from the dataset's own ``__getitem__``, so its pipeline
    applies. Nothing is copied.

    Args:
        dataset: The dataset to view (anything indexable).
        indices (np.ndarray): Global indices of the client's samples.
        client_id (int): The client's id. Defaults to -1.
    """

    def __init__(self, dataset, indices: np.ndarray, client_id: int = -1):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.client_id = int(client_id)

    @property
    def metainfo(self) -> dict:
        """dict: Meta information of the wrapped dataset."""
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def global_index(self, idx: int) -> int:
        """Global index of local sample ``idx`` (negative counts from the
        end)."""
        n = self.indices.size
        if not -n <= idx < n:
            raise IndexError(f'index {idx} out of range for client '
                             f'{self.client_id} with {n} samples')
        return int(self.indices[idx])

    def get_data_info(self, idx: int) -> dict:
        """Annotation of local sample ``idx``."""
        return self.dataset.get_data_info(self.global_index(idx))

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[self.global_index(idx)]

    def __len__(self) -> int:
        return int(self.indices.size)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(client_id={self.client_id}, '
                f'num_samples={len(self)}, '
                f'dataset={type(self.dataset).__name__})')


def check_local_train_cut(fraction: float, order: str) -> None:
    """Validate ``local_train_fraction`` / ``local_train_order``."""
    if isinstance(fraction, bool) or not isinstance(
            fraction, (int, float)) or not 0.0 < float(fraction) <= 1.0:
        raise ValueError('`local_train_fraction` must be a number in '
                         f'(0, 1], got {fraction!r}')
    if order not in ('auto', 'label', 'index'):
        raise ValueError("`local_train_order` must be 'auto', 'label' or "
                         f"'index', got {order!r}")


def local_train_cut(indices: np.ndarray, keys: np.ndarray, fraction: float,
                    order: str = 'label') -> np.ndarray:
    """The first ``int(fraction * n)`` of a client's ``n`` indices.

    The paper's code trains a client on ``idxs[:int(0.8 * len(idxs))]`` of
    its index list, whose order its draw gives: a label-based draw deals
    the classes one after another, so the list is grouped by label in
    ascending order. ``order='label'`` takes the cut in that order (within
    a label by global index), ``order='index'`` by global index.

    Args:
        indices (np.ndarray): The client's sorted global indices.
        keys (np.ndarray): The split key (label) of every global index.
        fraction (float): Kept fraction in (0, 1].
        order (str): ``'label'`` or ``'index'``.

    Returns:
        np.ndarray: The kept global indices, sorted.

    Example:
        >>> keys = np.array([1, 0, 1, 0, 2, 2])
        >>> local_train_cut(np.arange(6), keys, 0.5).tolist()  # labels 0, 1
        [0, 1, 3]
    """
    indices = np.asarray(indices, dtype=np.int64)
    if order == 'label':
        ordered = indices[np.lexsort((indices, keys[indices]))]
    else:
        ordered = np.sort(indices)
    kept = ordered[:int(fraction * indices.size)]
    return np.sort(kept)


@DATASETS.register_module()
class ClientPartitionedDataset(Dataset):
    """Wrap a dataset and split its samples among clients.

    Indexing, ``len`` and ``metainfo`` are those of the wrapped dataset over
    *all* samples (the federated engine addresses samples by global index);
    :meth:`client_indices` and :meth:`client_subset` give each client's
    share. The split uses one key per sample, read from the wrapped dataset
    once:

    - ``split_key='gt_label'`` (default): the class label of mmpretrain
      classification datasets. For detection datasets whose samples have no
      ``gt_label`` but ``instances`` (e.g. mmdet ``CocoDataset``), the
      image's dominant category is used instead (see
      :func:`dominant_category`; ``-1`` for images without instances).
    - ``split_key='dominant_category'``: that dominant category explicitly
      (a ``dominant_category`` field of the data info wins if present).
    - ``split_key='<field>'``: the field of every ``get_data_info(i)``
      dict, e.g. ``'source_id'``; scalars (ints or strings) only.
    - ``split_key='metainfo:<field>'``: ``dataset.metainfo[<field>]`` must
      be a sequence with one key per sample.

    The keys decide the split only; the samples returned for training are
    untouched.

    Exactly one of ``partition`` and ``partition_file`` is given. With
    ``partition``, the split is computed at initialization (deterministic
    for a given seed); with ``partition_file``, a JSON file written by
    :meth:`Partition.save` (or ``tools/partition.py``) is loaded and its
    fingerprint checked against the keys, so a file made for another dataset
    or split key raises a ValueError naming the file.

    Args:
        dataset (dict | BaseDataset): The dataset to split, or its config.
        partition (dict, optional): Partitioner config, e.g.
            ``dict(type='Dirichlet', num_clients=10, alpha=0.1, seed=0)``.
        partition_file (str, optional): A saved partition to load.
        split_key (str): Where to read the key of every sample (see above).
            Defaults to ``'gt_label'``.
        save_partition (str, optional): Write the partition (built or
            loaded) to this JSON path. Defaults to None.
        features_file (str, optional): ``.npy`` file with an ``(N, D)`` array
            of feature vectors for feature-based partitioners such as
            ``FeatureCluster``. Defaults to None.
        allow_empty_clients (bool): By default a client left without
            samples raises a ValueError naming it; set True to accept empty
            clients (e.g. when the engine skips them). Defaults to False.
        lazy_init (bool): Defer reading keys and partitioning until first
            use or :meth:`full_init`. Defaults to False.
        local_train_fraction (float): Train each client on only the first
            ``int(fraction * n)`` of its ``n`` samples, the paper's code's
            80/10/10 cut of a client's index list (``0.8`` reproduces it;
            the other 20 % are never trained on). Its lists are in the order
            its draw deals them: for label-based splits (Dirichlet, skew,
            shards) grouped by label in ascending order, so the cut drops a
            non-IID client's last classes; for IID splits in no label
            order. See ``local_train_order``. The partition itself (saved
            files, statistics) is unchanged. Defaults to 1.0 (no cut).
        local_train_order (str): Order in which the cut is taken:
            ``'label'`` (by split key, then index), ``'index'`` (by global
            index) or ``'auto'`` (``'index'`` for an IID partition, else
            ``'label'``). Defaults to ``'auto'``.
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 partition: Optional[dict] = None,
                 partition_file: Optional[str] = None,
                 split_key: str = 'gt_label',
                 save_partition: Optional[str] = None,
                 features_file: Optional[str] = None,
                 allow_empty_clients: bool = False,
                 lazy_init: bool = False,
                 local_train_fraction: float = 1.0,
                 local_train_order: str = 'auto'):
        if (partition is None) == (partition_file is None):
            raise ValueError('give exactly one of partition (a partitioner '
                             'config) and partition_file (a saved '
                             'partition)')
        if partition is not None and not isinstance(partition, dict):
            raise ValueError('partition must be a dict such as '
                             "dict(type='Dirichlet', num_clients=10, "
                             f'alpha=0.1), got {type(partition).__name__}')
        if not isinstance(split_key, str) or not split_key:
            raise ValueError(f'split_key must be a non-empty string, got '
                             f'{split_key!r}')
        check_local_train_cut(local_train_fraction, local_train_order)
        if partition_file is not None and not osp.isfile(partition_file):
            raise FileNotFoundError(
                f'partition_file {partition_file!r} does not exist')
        if features_file is not None and not osp.isfile(features_file):
            raise FileNotFoundError(
                f'features_file {features_file!r} does not exist')
        if isinstance(dataset, dict):
            check_dataset_paths(dataset)
            self.dataset = DATASETS.build(dataset)
        elif isinstance(dataset, Dataset):
            self.dataset = dataset
        else:
            raise TypeError('dataset must be a dict or a dataset object, '
                            f'got {type(dataset).__name__}')
        self.partition_cfg = copy.deepcopy(
            dict(partition)) if partition is not None else None
        self.partition_file = partition_file
        self.split_key = split_key
        self.save_partition = save_partition
        self.features_file = features_file
        self.allow_empty_clients = bool(allow_empty_clients)
        self.local_train_fraction = float(local_train_fraction)
        self.local_train_order = local_train_order
        self._partition: Optional[Partition] = None
        self.split_keys: Optional[np.ndarray] = None
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    # --------------------------------------------------------------- setup
    def full_init(self) -> None:
        """Initialize the wrapped dataset, read the keys and partition."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        keys = self._read_keys()
        self.split_keys = keys
        if self.partition_file is not None:
            part = Partition.load(
                self.partition_file, fingerprint=fingerprint_of(keys))
        else:
            features = self._read_features(keys.size)
            part = build_partition(self.partition_cfg, keys, features)
        self._check_empty(part)
        if self.save_partition:
            part.save(self.save_partition)
            print_log(
                f'saved the partition of {part.num_clients} clients to '
                f'{self.save_partition}',
                logger='current')
        self._partition = part
        self._fully_initialized = True

    def _read_features(self, num: int) -> Optional[np.ndarray]:
        if self.features_file is None:
            return None
        feats = np.load(self.features_file, allow_pickle=False)
        if feats.ndim != 2 or feats.shape[0] != num:
            raise ValueError(
                f'features_file {self.features_file!r} holds an array of '
                f'shape {feats.shape}; expected ({num}, D)')
        return feats

    def _check_empty(self, part: Partition) -> None:
        empty = np.flatnonzero(part.client_sizes == 0)
        if empty.size and not self.allow_empty_clients:
            shown = ', '.join(str(k) for k in empty[:20])
            more = f' (and {empty.size - 20} more)' if empty.size > 20 else ''
            raise ValueError(
                f'client {shown}{more} of {part.num_clients} holds no samples '
                f'after partitioning with {part.recipe or self.partition_file}'
                '; change the partition parameters or set '
                'allow_empty_clients=True')

    def _read_keys(self) -> np.ndarray:
        """One split key per sample of the wrapped dataset."""
        key = self.split_key
        num = len(self.dataset)
        if num == 0:
            raise ValueError('the wrapped dataset has no samples to split')
        if key.startswith(_METAINFO_PREFIX):
            field = key[len(_METAINFO_PREFIX):]
            meta = getattr(self.dataset, 'metainfo', {}) or {}
            if field not in meta:
                raise ValueError(f'split_key {key!r}: the dataset metainfo '
                                 f'has no field {field!r} (fields: '
                                 f'{sorted(meta)})')
            values = list(meta[field])
            if len(values) != num:
                raise ValueError(
                    f'split_key {key!r}: metainfo[{field!r}] has '
                    f'{len(values)} entries for {num} samples')
            return self._as_keys(values)
        return self._as_keys([
            self._key_of(self.dataset.get_data_info(i), i)
            for i in range(num)
        ])

    def _key_of(self, info: dict, idx: int):
        key = self.split_key
        if key in info:
            return self._scalar(info[key], idx)
        if key in ('gt_label', 'dominant_category') and 'instances' in info:
            return dominant_category(info['instances'])
        raise ValueError(
            f'split_key {key!r} is not a field of sample {idx} (fields: '
            f'{sorted(info)}); use a data-info field, '
            "'dominant_category' or 'metainfo:<field>'")

    def _scalar(self, value, idx: int):
        """A hashable scalar key from a data-info value."""
        if isinstance(value, (str, numbers.Number)):
            return value
        arr = np.asarray(value)
        if arr.size != 1:
            raise ValueError(
                f'split_key {self.split_key!r} of sample {idx} is {value!r}; '
                'a single key per sample is needed (multi-label samples '
                'need another split_key)')
        return arr.reshape(()).item()

    def _as_keys(self, values: list) -> np.ndarray:
        if all(isinstance(v, numbers.Integral) for v in values):
            return np.asarray(values, dtype=np.int64)
        if all(isinstance(v, numbers.Real) for v in values):
            return np.asarray(values, dtype=np.float64)
        return np.asarray([str(v) for v in values])

    # ----------------------------------------------------------------- API
    @property
    def partition(self) -> Partition:
        """Partition: The client split (initializes a lazy wrapper)."""
        if not self._fully_initialized:
            self.full_init()
        return self._partition

    @property
    def num_clients(self) -> int:
        """int: Number of clients."""
        return self.partition.num_clients

    @property
    def client_sizes(self) -> np.ndarray:
        """np.ndarray: Number of samples every client trains on."""
        sizes = self.partition.client_sizes
        if self.local_train_fraction >= 1.0:
            return sizes
        return (self.local_train_fraction * sizes).astype(np.int64)

    def client_indices(self, client_id: int) -> np.ndarray:
        """Sorted global indices of the samples client ``client_id``
        trains on (all of its share unless ``local_train_fraction``)."""
        indices = self.partition.indices(client_id)
        if self.local_train_fraction >= 1.0:
            return indices
        order = self.local_train_order
        if order == 'auto':
            kind = str((self.partition_cfg or {}).get('type', ''))
            order = 'index' if kind.upper() == 'IID' else 'label'
        return local_train_cut(indices, self.split_keys,
                               self.local_train_fraction, order)

    def client_subset(self, client_id: int) -> ClientSubset:
        """A no-copy dataset view of client ``client_id``'s samples."""
        return ClientSubset(self.dataset, self.client_indices(client_id),
                            client_id)

    @property
    def metainfo(self) -> dict:
        """dict: Meta information of the wrapped dataset."""
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def get_data_info(self, idx: int) -> dict:
        """Annotation of global sample ``idx``."""
        return self.dataset.get_data_info(idx)

    def __getitem__(self, idx: Union[int, Tuple[int, int]]) -> Any:
        """Sample ``idx``, or ``(idx, seed)`` with seeded augmentation.

        The federated engine's batch sampler yields ``(index, seed)`` pairs
        so that a sample's augmentation depends only on ``seed``.
        """
        if isinstance(idx, tuple):
            index, seed = idx
            return seeded(seed, lambda: self.dataset[int(index)])
        return self.dataset[idx]

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        state = (f'{self._partition.num_clients} clients'
                 if self._partition is not None else 'not initialized')
        return (f'{type(self).__name__}(dataset='
                f'{type(self.dataset).__name__}, {len(self)} samples, '
                f'{state}, split_key={self.split_key!r})')
