"""Partition leases in PostgreSQL: acquire, renew, release, always on the database's clock.

A lease is (partition, epoch). Acquiring bumps the epoch, and the bump is the
fence: any batch of the previous owner that commits afterwards fails
`durio_fence`. A partition can be acquired when it is free, its lease has
expired (by the database's `now()`, so node clocks do not matter), or its last
owner has this node's name (the same node restarting: its previous process is
gone or about to be fenced). An owner is `name@incarnation`.
"""

from __future__ import annotations

import typing


def acquire(connection: typing.Any, partitions: typing.Iterable[int], owner: str, lease_s: float) -> dict[int, int]:
    """Take every partition of `partitions` that can be taken; returns {partition: new epoch} of those taken."""
    with connection.transaction():
        rows = connection.execute(
            """UPDATE durio_partitions SET epoch = epoch + 1, owner = %s, expires_at = now() + make_interval(secs => %s)
               WHERE pid = ANY(%s) AND (expires_at IS NULL OR expires_at < now() OR split_part(owner, '@', 1) = %s)
               RETURNING pid, epoch""",
            (owner, lease_s, sorted(partitions), owner.split("@")[0]),
        ).fetchall()
    return {pid: epoch for pid, epoch in rows}


def renew(connection: typing.Any, epochs: dict[int, int], lease_s: float) -> set[int]:
    """Extend the leases still held at these epochs; returns the partitions whose lease was lost."""
    pids = sorted(epochs)
    with connection.transaction():
        rows = connection.execute(
            """UPDATE durio_partitions AS p SET expires_at = now() + make_interval(secs => %s)
               FROM unnest(%s::int[], %s::bigint[]) AS l(pid, epoch)
               WHERE p.pid = l.pid AND p.epoch = l.epoch
               RETURNING p.pid""",
            (lease_s, pids, [epochs[pid] for pid in pids]),
        ).fetchall()
    return set(pids) - {pid for (pid,) in rows}


def release(connection: typing.Any, epochs: dict[int, int]) -> None:
    """Let the leases expire now, so another node need not wait for them (those already lost are left alone)."""
    pids = sorted(epochs)
    with connection.transaction():
        connection.execute(
            """UPDATE durio_partitions AS p SET expires_at = now()
               FROM unnest(%s::int[], %s::bigint[]) AS l(pid, epoch)
               WHERE p.pid = l.pid AND p.epoch = l.epoch""",
            (pids, [epochs[pid] for pid in pids]),
        )


def owners(connection: typing.Any) -> list[tuple[int, int, str | None, bool, int]]:
    """(partition, epoch, owner, lease still valid, batches) of every partition, for views and tests."""
    with connection.transaction():
        return connection.execute(
            "SELECT pid, epoch, owner, coalesce(expires_at > now(), false), batch_seq FROM durio_partitions ORDER BY pid"
        ).fetchall()
