"""Which partitions a node of a cluster should hold: a fair share, decided by each node for itself.

Every node looks at the same lease table and the same list of live nodes and
asks for ceil(P / live nodes) partitions, no more. A node that holds more
than its share (a node joined) lets the extra ones go; a node that holds less
takes partitions nobody holds (free, or their lease expired: a node died).
Among free partitions each node prefers its own by rendezvous hashing, so two
nodes filling their shares at once mostly ask for different partitions; when
they do ask for the same one, the database's lease decides and the loser asks
again at its next heartbeat. The global rows (deployments, schedules) are one
more partition that any node takes when it is free, outside the share.

Pure functions, so the policy is tested without a database.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

GLOBAL_PARTITION = -1


@dataclass(frozen=True)
class Lease:
    partition: int
    owner: str | None  # the node name holding it, or None
    valid: bool  # the lease has not expired


@dataclass(frozen=True)
class Moves:
    take: list[int]  # free partitions to ask for, in order of preference
    let_go: list[int]  # partitions to hand over (held beyond the fair share)


def fair_share(partitions: int, live_nodes: int) -> int:
    return math.ceil(partitions / max(1, live_nodes))


def _preference(node: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{node}/{partition}".encode(), digest_size=8).digest()


def plan(me: str, partitions: int, leases: list[Lease], live_nodes: set[str]) -> Moves:
    """What `me` should take and let go, given every partition's lease and the nodes alive now."""
    live = live_nodes | {me}
    share = fair_share(partitions, len(live))
    # Held partitions, most preferred first: the least preferred are the ones handed over.
    mine = sorted(
        (lease.partition for lease in leases if lease.owner == me and lease.valid and lease.partition != GLOBAL_PARTITION),
        key=lambda p: _preference(me, p),
    )
    free = [lease.partition for lease in leases if not lease.valid or lease.owner is None]
    take: list[int] = []
    if GLOBAL_PARTITION in free:
        take.append(GLOBAL_PARTITION)
    if len(mine) < share:
        candidates = sorted((p for p in free if p != GLOBAL_PARTITION), key=lambda p: _preference(me, p))
        take += candidates[: share - len(mine)]
    # Hand over only when another live node can take them: nobody else alive, nothing to hand over.
    let_go = sorted(mine[share:]) if len(live) > 1 and len(mine) > share else []
    return Moves(take, let_go)
