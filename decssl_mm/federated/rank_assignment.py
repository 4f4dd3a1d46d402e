"""Share the clients of a round among the ranks of a distributed job."""
from typing import List, Sequence

import numpy as np


def assign_clients_to_ranks(client_ids: Sequence[int],
                            workloads: Sequence[int],
                            world_size: int) -> List[List[int]]:
    """Balance clients over ranks by workload (longest job first).

    Deterministic: every rank computes the same assignment. Each rank's list
    is sorted by client id. With more ranks than clients some ranks get none
    (they still join the round's reductions, so nothing hangs).

    Args:
        client_ids (Sequence[int]): Participants of the round.
        workloads (Sequence[int]): Work of each participant (e.g. its number
            of local iterations), same order as ``client_ids``.
        world_size (int): Number of ranks.

    Returns:
        list[list[int]]: Client ids of each rank.
    """
    if len(client_ids) != len(workloads):
        raise ValueError('`client_ids` and `workloads` differ in length.')
    order = sorted(range(len(client_ids)),
                   key=lambda i: (-int(workloads[i]), int(client_ids[i])))
    load = np.zeros(world_size, dtype=np.int64)
    shares: List[List[int]] = [[] for _ in range(world_size)]
    for i in order:
        rank = int(np.argmin(load))  # first least-loaded rank: deterministic
        shares[rank].append(int(client_ids[i]))
        load[rank] += int(workloads[i])
    return [sorted(s) for s in shares]
