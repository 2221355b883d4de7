"""A node of a durio cluster on PostgreSQL: reach the database, take the leases, ready the local store, heartbeat.

Single-node for now: the node takes every partition's lease (and the global
rows'), so it must be the only node of its cluster; another node started
against the same database waits for the leases (see README, "Running on
PostgreSQL (preview)"). What runs on top is today's runtime, unchanged, with
the store's `durability` set, so every batch is shipped before it commits.

The local LMDB store is a cache of PostgreSQL's rows. It is reused when its
receipt (the cluster's id and the batch counter of every partition, written in
the same transaction as each batch) matches PostgreSQL's; otherwise it is
emptied and loaded from PostgreSQL (a deleted data directory, a node that
missed batches), or, when PostgreSQL holds nothing yet, it seeds PostgreSQL
(an existing durio data directory turned into a cluster's first node).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import typing
import uuid
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.to_thread

from durio.cluster.durability import PostgresDurability, Unreachable, connect, describe_dsn
from durio.cluster.schema import GLOBAL_PARTITION, ensure_cluster, migrate
from durio.partitions import DEFAULT_PARTITIONS, check_partition_count
from durio.storage.lmdb_store import LmdbStore
from durio.storage.recording import RECEIPT_META, WriteSet
from durio.storage.txn import Txn

log = logging.getLogger("durio.cluster")

DEFAULT_LEASE_S = 10.0
RETRY_MAX_S = 5.0  # the longest wait between attempts to reach PostgreSQL at start


@dataclass(frozen=True)
class ClusterOptions:
    dsn: str
    node_name: str
    lease_s: float = DEFAULT_LEASE_S
    partitions: int | None = None  # for a new cluster; an existing one keeps its own

    def __post_init__(self) -> None:
        if not self.dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"--cluster takes a postgresql:// URL, not {self.dsn!r}")
        if not self.node_name or "@" in self.node_name:
            raise ValueError(f"a node name is a non-empty name without '@', not {self.node_name!r}")
        if not 1.0 <= self.lease_s <= 600.0:
            raise ValueError(f"the lease is between 1 and 600 seconds, not {self.lease_s}")
        if self.partitions is not None:
            check_partition_count(self.partitions)


def default_node_name() -> str:
    return socket.gethostname() or "durio"


def _open_cluster(options: ClusterOptions) -> PostgresDurability:
    """Reach PostgreSQL, bring durio's tables up to date, and learn the cluster; raises Unreachable."""
    connection = connect(options.dsn)
    try:
        found = migrate(connection)
        if found == 0:
            log.info("created durio's tables in PostgreSQL at %s", describe_dsn(options.dsn))
        cluster_id, partitions = ensure_cluster(connection, uuid.uuid4().hex, options.partitions or DEFAULT_PARTITIONS)
    except Exception as exc:
        if isinstance(exc, (Unreachable, ValueError)):
            raise
        raise Unreachable(f"PostgreSQL at {describe_dsn(options.dsn)}: {str(exc).strip()}") from None
    finally:
        connection.close()
    if options.partitions is not None and options.partitions != partitions:
        log.warning("the cluster has %d partitions (chosen when it was created); --partitions %d is ignored",
                    partitions, options.partitions)
    incarnation = f"{options.node_name}@{os.getpid()}.{secrets.token_hex(3)}"
    return PostgresDurability(options.dsn, incarnation, cluster_id, partitions, options.lease_s)


# The meta row where a data directory records its number of partitions (durio.workers.ownership reads it).
PARTITIONS_META = "partitions"
# The meta row of the sequence high-water mark (the runtime's), and the numbers a node incarnation's block holds:
# 2^40 (a trillion) each, far more than one incarnation uses.
SEQUENCE_META = "sequence"
SEQUENCE_BLOCK_BITS = 40


def ready_local_store(durability: PostgresDurability, data_dir: str) -> str:
    """Make the local store a current cache of PostgreSQL's rows; returns what was done, for the log."""
    store = LmdbStore(data_dir)
    try:
        done = _make_current(store, durability)
        # The store records the cluster's number of partitions, through PostgreSQL like every other write,
        # before the runtime reads it (which would otherwise record its own, in the local store alone).
        store.durability = durability
        first_number = durability.take_sequence_block() << SEQUENCE_BLOCK_BITS

        def record_partitions_and_sequence(txn: Txn) -> None:
            if txn.get_meta(PARTITIONS_META) != durability.partitions:
                txn.put_meta(PARTITIONS_META, durability.partitions)
            # The runtime goes on from here: past every number any node of the cluster used before.
            txn.put_meta(SEQUENCE_META, max(first_number, txn.get_meta(SEQUENCE_META) or 0))

        store.commit_batch([record_partitions_and_sequence])
        return done
    finally:
        store.close()


def _make_current(store: LmdbStore, durability: PostgresDurability) -> str:
    """Reuse the store if it holds every batch PostgreSQL holds; else seed PostgreSQL from it, or load it."""
    receipt = store.read(lambda txn: txn.get_meta(RECEIPT_META))
    current = durability.receipt()
    if receipt == current:
        return "reused the local store: it holds every batch PostgreSQL holds"
    if durability.holds_nothing():
        writes: WriteSet = {(db, key): value for db, key, value in store.shipped_rows()}
        shipped = durability.ship(writes)
        store.commit_batch([lambda txn: txn.put_meta(RECEIPT_META, shipped)])
        return f"seeded PostgreSQL with the local store's {len(writes)} rows"
    loaded = store.replace_all(durability.load_rows(), durability.receipt())
    why = "it is empty" if receipt is None else "it is behind PostgreSQL or another cluster's"
    return f"loaded the local store from PostgreSQL ({loaded} rows): {why}"


async def _reach(options: ClusterOptions) -> PostgresDurability:
    """Retry until PostgreSQL answers: a clear line per failure, with backoff, never a crash loop."""
    delay_s = 0.5
    while True:
        try:
            return await anyio.to_thread.run_sync(_open_cluster, options)
        except Unreachable as exc:
            log.error("%s; retrying in %.1f s", exc, delay_s)
        await anyio.sleep(delay_s)
        delay_s = min(delay_s * 2, RETRY_MAX_S)


async def _take_every_lease(durability: PostgresDurability) -> None:
    wanted = {GLOBAL_PARTITION, *range(durability.partitions)}
    delay_s = 0.2
    while True:
        try:
            missing = await anyio.to_thread.run_sync(durability.acquire, wanted)
        except Unreachable as exc:
            log.error("%s; retrying in %.1f s", exc, delay_s)
            missing = wanted
        else:
            if not missing:
                return
            log.warning("partitions %s are leased by another node; waiting for their leases to expire",
                        sorted(missing))
        await anyio.sleep(delay_s)
        delay_s = min(delay_s * 2, RETRY_MAX_S)


async def _ready_local_store_when_reachable(durability: PostgresDurability, data_dir: str) -> str:
    delay_s = 0.5
    while True:
        try:
            return await anyio.to_thread.run_sync(ready_local_store, durability, data_dir)
        except Unreachable as exc:
            log.error("cannot ready the local store: %s; retrying in %.1f s", exc, delay_s)
        await anyio.sleep(delay_s)
        delay_s = min(delay_s * 2, RETRY_MAX_S)


async def _heartbeat(durability: PostgresDurability, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """Renew the leases every quarter lease; a lost lease stops this node's writes for good (it must restart)."""
    task_status.started()
    failing = False
    while True:
        await anyio.sleep(durability.lease_s / 4)
        try:
            lost = await anyio.to_thread.run_sync(durability.renew)
        except Unreachable as exc:
            if not failing:
                log.error("cannot renew the leases: %s (writes stop if this lasts)", exc)
            failing = True
            continue
        if failing:
            log.warning("PostgreSQL renews the leases again")
            failing = False
        if lost:
            log.error("partitions %s were taken over by another node: this node writes nothing more for them; "
                      "restart it to rejoin", sorted(lost))


@contextlib.asynccontextmanager
async def open_cluster_node(options: ClusterOptions, data_dir: str | os.PathLike[str]) -> typing.AsyncIterator[PostgresDurability]:
    """Join the cluster for the block: the durability to set on the store, with its leases renewed."""
    durability = await _reach(options)
    try:
        await _take_every_lease(durability)
        done = await _ready_local_store_when_reachable(durability, os.fspath(data_dir))
        log.info("node %s holds %d partitions of the cluster at %s; %s", options.node_name, durability.partitions,
                 describe_dsn(options.dsn), done)
        async with anyio.create_task_group() as tasks:
            await tasks.start(_heartbeat, durability)
            yield durability
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(durability.release)
            except Unreachable as exc:
                log.warning("could not release the leases (they expire by themselves): %s", exc)
            durability.close()
