"""Which node is which site, and how many images each holds."""
from typing import Dict, List, Optional, Tuple

import numpy as np

#: ``node id -> (site id or None, number of training images)``
Roster = Dict[int, Tuple[Optional[int], int]]


def assign_sites(roster: Roster) -> Tuple[Dict[int, int], np.ndarray]:
    """Map every site (client id) to its node and count its images.

    Sites that set ``site-id`` keep it; without any, the nodes are
    numbered ``0..N-1`` in the order of their node ids. The ids must be
    exactly ``0..N-1`` (a client id is what the data order and augmentation
    seeds derive from, as in the in-process loop).

    Args:
        roster (dict): ``node id -> (site id or None, images)``.

    Returns:
        tuple: ``({site id: node id}, client_sizes)``.

    Raises:
        ValueError: No node, some nodes with and some without a site id,
            or ids that are not ``0..N-1``, naming the nodes.
    """
    if not roster:
        raise ValueError('No site answered the enrolment: start the '
                         'SuperNodes (one per site) before the run.')
    nodes = sorted(roster)
    given = [n for n in nodes if roster[n][0] is not None]
    if given and len(given) != len(nodes):
        missing = [n for n in nodes if roster[n][0] is None]
        raise ValueError(f'Nodes {missing} set no site-id while nodes '
                         f'{given} do: set it at every site or at none.')
    if given:
        site_of = {n: int(roster[n][0]) for n in nodes}
    else:
        site_of = {n: i for i, n in enumerate(nodes)}
    ids: List[int] = sorted(site_of.values())
    if ids != list(range(len(nodes))):
        raise ValueError(f'Site ids must be 0..{len(nodes) - 1}, one per '
                         f'node; got {dict(sorted(site_of.items()))} '
                         '(node -> site).')
    node_of = {s: n for n, s in site_of.items()}
    sizes = np.asarray([roster[node_of[s]][1] for s in ids], np.int64)
    return node_of, sizes
