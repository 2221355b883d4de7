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

from durio.cluster import placement
from durio.cluster.durability import ClusterView, PostgresDurability, Unreachable, connect, describe_dsn
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
    advertise_url: str | None = None  # where the other nodes reach this one (None: a free port on loopback)

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
        log.warning(
            "the cluster has %d partitions (chosen when it was created); --partitions %d is ignored",
            partitions,
            options.partitions,
        )
    incarnation = f"{options.node_name}@{os.getpid()}.{secrets.token_hex(3)}"
    return PostgresDurability(options.dsn, incarnation, cluster_id, partitions, options.lease_s)


# The meta row where a data directory records its number of partitions (durio.workers.ownership reads it).
PARTITIONS_META = "partitions"
# The meta row of the sequence high-water mark (the runtime's), and the numbers a node incarnation's block holds:
# 2^40 (a trillion) each, far more than one incarnation uses.
SEQUENCE_META = "sequence"
SEQUENCE_BLOCK_BITS = 40


def ready_local_store(durability: PostgresDurability, data_dir: str, current: set[int] | None = None) -> tuple[str, set[int]]:
    """Make the local store a current cache of the partitions this node holds (and of the global rows).

    `current`: the partitions whose rows the store already holds, current (None: a node starting, which
    judges by the store's receipt). Returns what was done, for the log, and the partitions now current."""
    store = LmdbStore(data_dir)
    try:
        done = _make_current(store, durability, current)
        if current is not None:
            return done, set(durability.epochs())
        # The store records the cluster's number of partitions before the runtime reads it (which would
        # otherwise record its own).
        store.durability = durability
        first_number = durability.take_sequence_block() << SEQUENCE_BLOCK_BITS

        def record_partitions_and_sequence(txn: Txn) -> None:
            if txn.get_meta(PARTITIONS_META) != durability.partitions:
                txn.put_meta(PARTITIONS_META, durability.partitions)
            # The runtime goes on from here: past every number any node of the cluster used before.
            txn.put_meta(SEQUENCE_META, max(first_number, txn.get_meta(SEQUENCE_META) or 0))

        store.commit_batch([record_partitions_and_sequence])
        return done, set(durability.epochs())
    finally:
        store.close()


def _make_current(store: LmdbStore, durability: PostgresDurability, current: set[int] | None) -> str:
    """Reuse what the store holds current; seed PostgreSQL from it when PostgreSQL is empty; load the rest."""
    held = set(durability.epochs())
    every_partition = {GLOBAL_PARTITION, *range(durability.partitions)}
    if current is None:
        receipt = store.read(lambda txn: txn.get_meta(RECEIPT_META))
        if receipt == durability.receipt() and held == every_partition:
            return "reused the local store: it holds every batch PostgreSQL holds"
        if held == every_partition and durability.holds_nothing():
            writes: WriteSet = {(db, key): value for db, key, value in store.shipped_rows()}
            shipped = durability.ship(writes)
            store.commit_batch([lambda txn: txn.put_meta(RECEIPT_META, shipped)])
            return f"seeded PostgreSQL with the local store's {len(writes)} rows"
        # A partition's rows are current when the store's receipt (of this cluster) counts as many batches
        # of it as PostgreSQL does.
        counted = dict(receipt[1]) if isinstance(receipt, list) and receipt[0] == durability.cluster_id else {}
        in_postgres = durability.batch_seqs(held)
        current = {pid for pid in held if pid in counted and counted[pid] == in_postgres.get(pid)}
    # The global rows (deployments, schedules) are always read afresh: any node may have changed them.
    reload = (held - current) | {GLOBAL_PARTITION}
    keep = held - reload
    dropped, written = store.replace_rows(
        lambda db, key: durability.partition_of_row(db, key) not in keep, durability.load_rows(reload), durability.receipt()
    )
    if not keep and not dropped:
        return f"loaded the local store from PostgreSQL ({written} rows)"
    return (
        f"kept {len(keep)} partitions current in the local store, loaded {len(reload)} from PostgreSQL "
        f"({written} rows), dropped {dropped} rows of partitions held elsewhere"
    )


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


class ClusterNode:
    """One node's place in the cluster: its leases, its heartbeat, the cluster as last seen, and its moves.

    The heartbeat (every quarter lease) renews the leases, says the node is alive, reads every node and
    lease, and decides (durio.cluster.placement) what to take and what to hand over. Taking happens at
    once; handing over and dropping what was lost wait for the runtime serving the partitions to stop:
    `changed` tells the node's owner to stop it, then `settle` makes the local store match what is held."""

    def __init__(self, options: ClusterOptions, durability: PostgresDurability, data_dir: str, peer_url: str | None) -> None:
        self.options = options
        self.durability = durability
        self.data_dir = data_dir
        self.peer_url = peer_url
        self.name = options.node_name
        self.view: ClusterView = ClusterView([], [])
        self.changed = anyio.Event()
        self._let_go: set[int] = set()
        self._current: set[int] | None = None  # partitions whose rows the local store holds current

    @property
    def held(self) -> set[int]:
        """The partitions this node holds (the global rows' lease aside)."""
        return {pid for pid in self.durability.epochs() if pid != GLOBAL_PARTITION}

    def owner_of(self, partition: int) -> str | None:
        if partition in self.held:
            return self.name
        for row in self.view.partitions:
            if row.pid == partition and row.valid:
                return row.owner_name
        return None

    def live_nodes(self) -> list[str]:
        return sorted({row.name for row in self.view.nodes if row.alive} | {self.name})

    def peer_url_of(self, name: str) -> str | None:
        return next((row.peer_url for row in self.view.nodes if row.name == name), None)

    def _beat(self) -> bool:
        """One heartbeat (blocking): True when what this node should serve changed."""
        lost = self.durability.renew()
        self.view = self.durability.beat(self.peer_url)
        moves = placement.plan(
            self.name,
            self.durability.partitions,
            [placement.Lease(row.pid, row.owner_name, row.valid) for row in self.view.partitions],
            {row.name for row in self.view.nodes if row.alive},
        )
        before = set(self.durability.epochs())
        if moves.take:
            self.durability.acquire(moves.take)
        taken = set(self.durability.epochs()) - before
        if taken:
            self.view = self.durability.beat(self.peer_url)
        new_let_go = set(moves.let_go) - self._let_go
        self._let_go |= set(moves.let_go)
        if lost:
            log.error("partitions %s were taken over by another node: this node stops serving them", sorted(lost))
        if taken - {GLOBAL_PARTITION}:
            log.info("node %s takes partitions %s", self.name, sorted(taken - {GLOBAL_PARTITION}))
        if new_let_go:
            log.info(
                "node %s hands partitions %s over (fair share: %d of %d nodes)",
                self.name,
                sorted(new_let_go),
                placement.fair_share(self.durability.partitions, len(self.live_nodes())),
                len(self.live_nodes()),
            )
        return bool(lost or (taken - {GLOBAL_PARTITION}) or new_let_go)

    async def beat(self) -> None:
        if await anyio.to_thread.run_sync(self._beat):
            self.changed.set()

    async def heartbeat(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        failing = False
        while True:
            await anyio.sleep(self.durability.lease_s / 4)
            try:
                await self.beat()
            except Unreachable as exc:
                if not failing:
                    log.error("cannot renew the leases: %s (writes stop if this lasts)", exc)
                failing = True
                continue
            if failing:
                log.warning("PostgreSQL renews the leases again")
                failing = False

    def _settle(self) -> str:
        self.durability.release_some(self._let_go)
        self._let_go.clear()
        self.durability.forget_lost()
        done, self._current = ready_local_store(self.durability, self.data_dir, self._current)
        return done

    async def settle(self) -> set[int]:
        """Between two runtimes: hand over what should go, and make the local store match what is held."""
        self.changed = anyio.Event()
        delay_s = 0.5
        while True:
            try:
                done = await anyio.to_thread.run_sync(self._settle)
                break
            except Unreachable as exc:
                log.error("cannot ready the local store: %s; retrying in %.1f s", exc, delay_s)
            await anyio.sleep(delay_s)
            delay_s = min(delay_s * 2, RETRY_MAX_S)
        held = self.held
        log.info("node %s serves partitions %s of %d; %s", self.name, sorted(held), self.durability.partitions, done)
        return held


async def _join(node: ClusterNode) -> None:
    """Take this node's first share, retrying until PostgreSQL answers."""
    delay_s = 0.2
    while True:
        try:
            await node.beat()
            return
        except Unreachable as exc:
            log.error("%s; retrying in %.1f s", exc, delay_s)
        await anyio.sleep(delay_s)
        delay_s = min(delay_s * 2, RETRY_MAX_S)


@contextlib.asynccontextmanager
async def open_cluster_node(
    options: ClusterOptions, data_dir: str | os.PathLike[str], peer_url: str | None = None
) -> typing.AsyncIterator[ClusterNode]:
    """Join the cluster for the block: the node, with its heartbeat running."""
    durability = await _reach(options)
    node = ClusterNode(options, durability, os.fspath(data_dir), peer_url)
    try:
        await _join(node)
        async with anyio.create_task_group() as tasks:
            await tasks.start(node.heartbeat)
            yield node
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(durability.release)
            except Unreachable as exc:
                log.warning("could not release the leases (they expire by themselves): %s", exc)
            durability.close()
