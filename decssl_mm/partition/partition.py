"""The :class:`Partition` result type: which samples each client holds."""
import copy
import hashlib
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from decssl_mm.utils.io import atomic_write_text
from .file_checks import check_partition_data, unique_overlap
from .utils import as_key_array, encode_keys

__all__ = ['Partition', 'fingerprint_of', 'format_table']

#: Value of the ``format`` field of a partition JSON file.
FORMAT_NAME = 'decssl_mm.partition'
#: Version of the partition JSON layout written by :meth:`Partition.save`.
FORMAT_VERSION = 1


def fingerprint_of(keys) -> Dict[str, Union[int, str]]:
    """Fingerprint of the key array a partition was made from.

    The keys are brought to a canonical form before hashing so that the same
    labels give the same fingerprint whatever their in-memory dtype:

    - integers and booleans: little-endian ``int64`` bytes;
    - floats: little-endian ``float64`` bytes;
    - strings (and other objects): the UTF-8 encoding of the keys joined by
      ``'\\x00'``.

    Args:
        keys (array-like): One key per sample (labels, ids, ...).

    Returns:
        dict: ``{'num_samples': N, 'key_kind': 'int'|'float'|'str',
        'sha256': <hex digest>}``.
    """
    arr = as_key_array(keys, name='keys')
    if arr.dtype.kind in 'iu':
        kind, data = 'int', arr.astype('<i8').tobytes()
    elif arr.dtype.kind == 'f':
        kind, data = 'float', arr.astype('<f8').tobytes()
    else:
        kind, data = 'str', '\x00'.join(arr.tolist()).encode('utf-8')
    return dict(
        num_samples=int(arr.size),
        key_kind=kind,
        sha256=hashlib.sha256(data).hexdigest())


class Partition:
    """A split of ``num_samples`` samples among clients.

    Client ``k`` (``0 <= k < num_clients``) holds the sorted ``int64`` global
    sample indices ``indices(k)``. Every sample belongs to at most one
    client; samples that belong to none are *dropped* (e.g. classes that no
    client was dealt, or keys listed in ``NaturalId(ignore_keys=...)``) and
    only counted.

    Args:
        client_indices (Sequence[np.ndarray] | dict[int, np.ndarray]): Index
            array of every client, as a sequence ordered by client id or a
            dict ``{client_id: indices}`` with ids ``0..K-1``.
        num_samples (int): Number of samples of the split key array.
        recipe (dict, optional): How the partition was made:
            ``dict(type=..., params=dict(...), seed=...)``. Defaults to None.
        fingerprint (dict, optional): :func:`fingerprint_of` of the keys.
            Defaults to None.
        dropped (int, optional): Number of samples held by no client.
            Defaults to ``num_samples - total assigned``.
    """

    def __init__(self,
                 client_indices: Union[Sequence[np.ndarray],
                                       Dict[int, np.ndarray]],
                 num_samples: int,
                 recipe: Optional[dict] = None,
                 fingerprint: Optional[dict] = None,
                 dropped: Optional[int] = None):
        if isinstance(client_indices, dict):
            ids = sorted(int(k) for k in client_indices)
            if ids != list(range(len(ids))):
                raise ValueError('client_indices keys must be 0..K-1, got '
                                 f'{ids[:10]}')
            client_indices = [client_indices[k] for k in range(len(ids))]
        self._clients: List[np.ndarray] = [
            np.sort(np.asarray(idx, dtype=np.int64).reshape(-1))
            for idx in client_indices
        ]
        if not self._clients:
            raise ValueError('client_indices must hold at least one client')
        self.num_samples = int(num_samples)
        assigned = int(sum(idx.size for idx in self._clients))
        self.dropped = (self.num_samples - assigned
                        if dropped is None else int(dropped))
        self.recipe = copy.deepcopy(recipe) if recipe is not None else {}
        self.fingerprint = copy.deepcopy(fingerprint) if fingerprint else None

    # ------------------------------------------------------------------ API
    @property
    def num_clients(self) -> int:
        """int: Number of clients."""
        return len(self._clients)

    @property
    def client_sizes(self) -> np.ndarray:
        """np.ndarray: Number of samples of every client (``int64``)."""
        return np.array([idx.size for idx in self._clients], dtype=np.int64)

    def indices(self, client_id: int) -> np.ndarray:
        """Sorted global sample indices of one client.

        Args:
            client_id (int): Client id in ``[0, num_clients)``.

        Returns:
            np.ndarray: A read-only ``int64`` view of the indices.
        """
        if not 0 <= int(client_id) < self.num_clients:
            raise IndexError(f'client_id {client_id} out of range for '
                             f'{self.num_clients} clients')
        view = self._clients[int(client_id)].view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self.num_clients

    def __iter__(self):
        return (self.indices(k) for k in range(self.num_clients))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Partition):
            return NotImplemented
        return (self.num_samples == other.num_samples
                and self.dropped == other.dropped
                and self.recipe == other.recipe
                and self.fingerprint == other.fingerprint
                and self.num_clients == other.num_clients and all(
                    np.array_equal(a, b)
                    for a, b in zip(self._clients, other._clients)))

    def __repr__(self) -> str:
        sizes = self.client_sizes
        return (f'{type(self).__name__}(num_clients={self.num_clients}, '
                f'num_samples={self.num_samples}, dropped={self.dropped}, '
                f'sizes min/max={sizes.min()}/{sizes.max()}, '
                f'recipe={self.recipe})')

    def assignment(self) -> np.ndarray:
        """Client id of every sample, ``-1`` for dropped samples.

        Returns:
            np.ndarray: ``(num_samples,)`` ``int64`` array.
        """
        assign = np.full(self.num_samples, -1, dtype=np.int64)
        for k, idx in enumerate(self._clients):
            assign[idx] = k
        return assign

    # ----------------------------------------------------------- validation
    def validate(self) -> 'Partition':
        """Check that the partition is consistent.

        Every index lies in ``[0, num_samples)``, every client's indices are
        sorted and unique, no sample belongs to two clients, and the samples
        held by no client are exactly ``dropped`` many.

        Returns:
            Partition: ``self``, to allow chaining.
        """
        for k, idx in enumerate(self._clients):
            if idx.size == 0:
                continue
            if idx[0] < 0 or idx[-1] >= self.num_samples:
                raise ValueError(f'client {k} holds indices outside '
                                 f'[0, {self.num_samples})')
            if np.any(np.diff(idx) <= 0):
                raise ValueError(f'client {k} holds repeated indices')
        first = unique_overlap(self._clients)
        if first is not None:
            raise ValueError(f'sample {first} belongs to more than one '
                             'client')
        unassigned = self.num_samples - int(self.client_sizes.sum())
        if unassigned != self.dropped:
            raise ValueError(f'{unassigned} samples belong to no client but '
                             f'dropped={self.dropped}')
        if (self.fingerprint is not None
                and self.fingerprint.get('num_samples') != self.num_samples):
            raise ValueError('fingerprint num_samples '
                             f'{self.fingerprint.get("num_samples")} != '
                             f'num_samples {self.num_samples}')
        return self

    def check_fingerprint(self,
                          fingerprint: dict,
                          source: str = 'partition') -> None:
        """Raise a ValueError if ``fingerprint`` differs from this one.

        Args:
            fingerprint (dict): Fingerprint of the keys the caller holds.
            source (str): What to name in the message (e.g. the file path).
                Defaults to ``'partition'``.
        """
        if self.fingerprint is None:
            if fingerprint.get('num_samples') != self.num_samples:
                raise ValueError(
                    f'{source} was made for {self.num_samples} samples, '
                    f'but the dataset has {fingerprint.get("num_samples")}')
            return
        diffs = [
            f'{key}: {self.fingerprint.get(key)!r} in {source} vs '
            f'{fingerprint.get(key)!r} for the given keys'
            for key in sorted(set(self.fingerprint) | set(fingerprint))
            if self.fingerprint.get(key) != fingerprint.get(key)
        ]
        if diffs:
            raise ValueError(
                f'{source} was made for a different dataset or split key '
                '(fingerprint mismatch): ' + '; '.join(diffs))

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """JSON-serializable representation (see :meth:`save`)."""
        return dict(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            num_samples=self.num_samples,
            num_clients=self.num_clients,
            dropped=self.dropped,
            recipe=self.recipe,
            fingerprint=self.fingerprint,
            client_sizes=self.client_sizes.tolist(),
            clients=[idx.tolist() for idx in self._clients])

    @classmethod
    def from_dict(cls, data: dict, source: str = 'partition') -> 'Partition':
        """Inverse of :meth:`to_dict`.

        Args:
            data (dict): The parsed JSON object.
            source (str): Name used in error messages. Defaults to
                ``'partition'``.
        """
        if not isinstance(data, dict) or data.get('format') != FORMAT_NAME:
            raise ValueError(f'{source} is not a {FORMAT_NAME} file')
        if data.get('version') != FORMAT_VERSION:
            raise ValueError(f'{source} has format version '
                             f'{data.get("version")}, expected '
                             f'{FORMAT_VERSION}')
        for key in ('num_samples', 'clients'):
            if key not in data:
                raise ValueError(f'{source} lacks the field {key!r}')
        check_partition_data(data, source)
        return cls(
            data['clients'],
            num_samples=data['num_samples'],
            recipe=data.get('recipe'),
            fingerprint=data.get('fingerprint'),
            dropped=data.get('dropped'))

    def to_json(self) -> str:
        """The JSON text written by :meth:`save`."""
        return json.dumps(self.to_dict(), separators=(',', ':'),
                          sort_keys=True)

    def save(self, path: str) -> None:
        """Write the partition as JSON, atomically.

        Written with :func:`decssl_mm.utils.io.atomic_write_text`
        (temporary file in the destination directory, ``fsync``, rename), so
        a reader never sees a half-written file.

        Args:
            path (str): Destination ``.json`` path; parent directories are
                created.
        """
        atomic_write_text(self.to_json() + '\n', path)

    @classmethod
    def load(cls,
             path: str,
             fingerprint: Optional[dict] = None) -> 'Partition':
        """Read a partition written by :meth:`save`.

        Args:
            path (str): The ``.json`` file.
            fingerprint (dict, optional): If given, the fingerprint of the keys
                the caller is about to use; a file made for other keys raises
                a ValueError naming the file and the differing fields.
                Defaults to None.

        Returns:
            Partition: The validated partition.
        """
        if not osp.isfile(path):
            raise FileNotFoundError(f'partition file {path!r} does not exist')
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError,
                    RecursionError) as e:
                raise ValueError(f'partition file {path!r} is not valid '
                                 f'JSON: {e}') from e
        source = f'partition file {path!r}'
        part = cls.from_dict(data, source=source)
        if fingerprint is not None:
            part.check_fingerprint(fingerprint, source=source)
        try:
            part.validate()
        except ValueError as e:
            raise ValueError(f'{source} is inconsistent: {e}') from e
        return part

    # ----------------------------------------------------------- statistics
    def stats(self, labels) -> dict:
        """Label statistics of every client.

        Args:
            labels (array-like): One label (or other categorical key) per
                sample, ``len(labels) == num_samples``.

        Returns:
            dict: With keys

            - ``num_clients``, ``num_samples``, ``dropped`` (int);
            - ``classes`` (np.ndarray): sorted distinct labels, the columns
              of ``histograms``;
            - ``sizes`` (np.ndarray): ``(K,)`` samples per client;
            - ``histograms`` (np.ndarray): ``(K, C)`` label counts per client;
            - ``global_histogram`` (np.ndarray): ``(C,)`` label counts over
              all samples (dropped ones included);
            - ``entropy`` (np.ndarray): ``(K,)`` Shannon entropy in nats of
              every client's label distribution (NaN for an empty client);
            - ``mean_entropy`` (float): mean of ``entropy`` over non-empty
              clients; ``global_entropy`` (float): entropy of the global
              label distribution;
            - ``emd`` (np.ndarray): ``(K,)`` earth mover's distance between
              each client's label distribution and the global one (NaN for an
              empty client); ``mean_emd`` (float).

            The EMD treats the classes as points ``0, 1, ..., C-1`` on a line
            in sorted label order with unit distance between neighbours, so
            it equals ``sum_c |F_client(c) - F_global(c)|`` where ``F`` is the
            cumulative distribution. It is 0 for a client whose label mix
            matches the global one and at most ``C - 1``.
        """
        labels = as_key_array(labels, name='labels')
        if labels.size != self.num_samples:
            raise ValueError(f'labels has {labels.size} entries but the '
                             f'partition covers {self.num_samples} samples')
        classes, codes = encode_keys(labels)
        num_classes = classes.size
        assign = self.assignment()
        kept = assign >= 0
        flat = assign[kept] * num_classes + codes[kept]
        hist = np.bincount(
            flat, minlength=self.num_clients * num_classes).reshape(
                self.num_clients, num_classes)
        global_hist = np.bincount(codes, minlength=num_classes)
        sizes = hist.sum(axis=1)
        with np.errstate(divide='ignore', invalid='ignore'):
            probs = hist / sizes[:, None]
            plogp = np.where(hist > 0, probs * np.log(probs), 0.0)
            entropy = -plogp.sum(axis=1)
            global_p = global_hist / global_hist.sum()
            emd = np.abs(np.cumsum(probs, axis=1) -
                         np.cumsum(global_p)[None]).sum(axis=1)
        nonempty = sizes > 0
        entropy[~nonempty] = np.nan
        emd[~nonempty] = np.nan
        gp = global_p[global_p > 0]
        return dict(
            num_clients=self.num_clients,
            num_samples=self.num_samples,
            dropped=self.dropped,
            classes=classes,
            sizes=sizes,
            histograms=hist,
            global_histogram=global_hist,
            entropy=entropy,
            mean_entropy=float(entropy[nonempty].mean())
            if nonempty.any() else float('nan'),
            global_entropy=float(-(gp * np.log(gp)).sum()),
            emd=emd,
            mean_emd=float(emd[nonempty].mean())
            if nonempty.any() else float('nan'))


def format_table(stats: dict,
                 max_rows: Optional[int] = 50,
                 top_classes: int = 3) -> str:
    """Render :meth:`Partition.stats` as a plain-text table.

    One row per client: size, number of distinct labels, label entropy
    (nats), EMD to the global label distribution and the most frequent
    labels; then a summary.

    Args:
        stats (dict): The output of :meth:`Partition.stats`.
        max_rows (int, optional): Show at most this many clients (the first
            and last halves); None shows all. Defaults to 50.
        top_classes (int): Number of most frequent labels shown per client.
            Defaults to 3.

    Returns:
        str: The table.
    """
    sizes, hist = stats['sizes'], stats['histograms']
    classes = stats['classes']
    num_clients = int(stats['num_clients'])
    header = ('client', 'size', 'labels', 'entropy', 'EMD', 'top labels')
    rows = []
    shown = list(range(num_clients))
    if max_rows is not None and num_clients > max_rows:
        half = max(max_rows // 2, 1)
        shown = shown[:half] + [None] + shown[-half:]
    for k in shown:
        if k is None:
            rows.append(('...', '', '', '', '', ''))
            continue
        counts = hist[k]
        top = np.argsort(-counts, kind='stable')[:top_classes]
        top_text = ' '.join(f'{classes[c]}:{counts[c]}' for c in top
                            if counts[c] > 0)
        rows.append((str(k), str(int(sizes[k])),
                     str(int(np.count_nonzero(counts))),
                     _fmt_float(stats['entropy'][k]),
                     _fmt_float(stats['emd'][k]), top_text))
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows))
        for i in range(len(header))
    ]
    lines = [
        '  '.join(h.rjust(w) if i < 5 else h
                  for i, (h, w) in enumerate(zip(header, widths)))
    ]
    lines.append('  '.join('-' * w for w in widths))
    for row in rows:
        lines.append('  '.join(
            c.rjust(w) if i < 5 else c
            for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    sizes_nz = sizes.astype(np.float64)
    lines.append('')
    lines.append(
        f'clients: {num_clients}  samples: {int(stats["num_samples"])}  '
        f'dropped: {int(stats["dropped"])}  labels: {len(classes)}')
    lines.append(f'size min/median/max: {int(sizes.min())}/'
                 f'{_fmt_float(np.median(sizes_nz))}/{int(sizes.max())}  '
                 f'empty clients: {int(np.count_nonzero(sizes == 0))}')
    lines.append(f'mean label entropy: {_fmt_float(stats["mean_entropy"])} '
                 f'nats (global {_fmt_float(stats["global_entropy"])})  '
                 f'mean EMD to global: {_fmt_float(stats["mean_emd"])}')
    return '\n'.join(lines)


def _fmt_float(value) -> str:
    value = float(value)
    return 'nan' if np.isnan(value) else f'{value:.3f}'
