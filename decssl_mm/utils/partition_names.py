"""Short partition names (``iid``, ``dir0.1``, ``skew0.5``, ...).

One name per partition config, used on command lines (sweep grids), in
results records and on plot axes:

==================  ================================================
name                partition config
==================  ================================================
``iid``             ``dict(type='IID')``
``dir<alpha>``      ``dict(type='Dirichlet', alpha=<alpha>)``
``skew<ratio>``     ``dict(type='Skew', ratio=<ratio>)``
``shards<n>``       ``dict(type='Shards', shards_per_client=<n>)``
``patho<m>``        ``dict(type='Pathological', classes_per_client=<m>)``
==================  ================================================

``dirichlet<alpha>`` and ``pathological<m>`` are accepted when parsing.
"""
import ast
import re
from typing import Any, Optional, Tuple

__all__ = [
    'PARTITION_NAME_FORMS', 'PartitionNameError', 'parse_partition_name',
    'partition_name', 'heterogeneity_rank'
]

# (pattern, partition type, parameter, printed prefix)
_SPECS = (
    (re.compile(r'^iid$'), 'IID', None, 'iid'),
    (re.compile(r'^dir(?:ichlet)?([0-9.eE+-]+)$'), 'Dirichlet', 'alpha',
     'dir'),
    (re.compile(r'^skew([0-9.eE+-]+)$'), 'Skew', 'ratio', 'skew'),
    (re.compile(r'^shards(\d+)$'), 'Shards', 'shards_per_client', 'shards'),
    (re.compile(r'^patho(?:logical)?(\d+)$'), 'Pathological',
     'classes_per_client', 'patho'),
)
PARTITION_NAME_FORMS = 'iid, dir<alpha>, skew<ratio>, shards<n>, patho<m>'
# kept from the current partition when a name replaces it
_KEPT = ('num_clients', 'seed')
_DIRICHLET_KEPT = ('min_size', 'balance', 'max_tries', 'size_range')


class PartitionNameError(ValueError):
    """A string that is not a partition name (the message lists the forms).
    """


def parse_partition_name(name: str, current: Optional[dict] = None) -> dict:
    """The partition config of a short name.

    Args:
        name (str): E.g. ``'iid'``, ``'dir0.1'``, ``'skew0.5'``.
        current (dict, optional): The partition config being replaced; its
            ``num_clients`` and ``seed`` (and, Dirichlet to Dirichlet, its
            ``min_size``/``balance``/``max_tries``) are kept.

    Returns:
        dict: The partition config.

    Raises:
        PartitionNameError: If ``name`` is not one of the forms.
    """
    current = dict(current or {})
    text = str(name).strip().lower()
    for pattern, typ, param, _ in _SPECS:
        match = pattern.match(text)
        if not match:
            continue
        out = {'type': typ}
        out.update({k: current[k] for k in _KEPT if k in current})
        if typ == 'Dirichlet' and current.get('type') == 'Dirichlet':
            out.update({k: current[k] for k in _DIRICHLET_KEPT
                        if k in current})
        if param is not None:
            try:
                out[param] = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                break
        return out
    raise PartitionNameError(f'partition value {name!r} is not one of '
                             f'{PARTITION_NAME_FORMS} (or a dict)')


def partition_name(part: Any) -> Optional[str]:
    """The short name of a partition config (inverse of parsing).

    Args:
        part (dict): A partition config.

    Returns:
        str | None: ``'iid'``, ``'dir0.1'``, ...; the type name for other
        partitioners; None when ``part`` is not a dict.
    """
    if not isinstance(part, dict):
        return None
    typ = str(part.get('type', ''))
    for _, name, param, prefix in _SPECS:
        if name == typ:
            return prefix + ('' if param is None else str(part.get(param)))
    return typ or None


def heterogeneity_rank(name: Any) -> Tuple[int, float, str]:
    """Sort key of partition names from IID to most skewed.

    ``iid``, then ``dir<alpha>`` by decreasing alpha, then ``skew<ratio>`` by
    decreasing ratio, then anything else (by name).
    """
    text = str(name).lower()
    if text == 'iid':
        return (0, 0.0, text)
    match = re.match(r'^(dir(?:ichlet)?|skew)([0-9.eE+-]+)$', text)
    if match:
        try:
            val = float(match.group(2))
        except ValueError:
            val = 0.0
        return (1 if match.group(1).startswith('dir') else 2, -val, text)
    return (3, 0.0, text)
