"""PostgreSQL as the truth under a node's local LMDB store: every batch shipped, fenced, in one round trip.

`PostgresDurability` is the storage's `Durability` (durio.storage.recording):
the writer thread calls `ship` with a batch's write set before the LMDB commit.
`ship` sends one transaction in one pipeline: `durio_fence` over every
partition the batch touches (with this node's epochs), an upsert of the rows
written and a delete of the rows deleted, each with unnest arrays. If the fence
refuses (another node owns a partition now), the whole transaction is rolled
back and `Fenced` raised; if PostgreSQL cannot be reached, `Unreachable`. Either
way the LMDB transaction is aborted, so the node acknowledges nothing that
PostgreSQL does not hold.

A batch whose COMMIT was sent but not answered (the connection dropped) may or
may not be in PostgreSQL. It is kept as pending; before the next batch,
`catch_up` asks PostgreSQL whether its partitions' batch counters moved, and if
they did, hands the batch back to be written locally too, so the local store
never falls behind the truth it serves.

Leases: the node holds an epoch per partition (durio.cluster.leases); the
heartbeat renews them. The node also fences itself: it stops shipping once
`lease_s - margin` has passed on its own monotonic clock since it sent its last
good renewal (safety is the database's fence; this only stops a node that lost
touch from doing work that will be refused).
"""

from __future__ import annotations

import logging
import threading
import time
import typing
from dataclasses import dataclass

import psycopg
import psycopg.conninfo

from durio.cluster import leases
from durio.cluster.schema import DB_NAMES, DB_NUMBERS, FENCED_SQLSTATE, GLOBAL_PARTITION
from durio.partitions import partition_of_key
from durio.storage import StorageError
from durio.storage import schema as storage_schema
from durio.storage.recording import DELIVERY_DATABASES, WriteSet

log = logging.getLogger("durio.cluster")

CONNECT_TIMEOUT_S = 3
ROWS_PER_STATEMENT = 5000  # rows of a batch per INSERT or DELETE statement (each well inside the statement timeout)
DELIVERIES_CHANNEL = "durio_deliveries"  # NOTIFY payload: the partition a delivery was left for
# Every statement durio sends gives up after STATEMENT_TIMEOUT_S: half the default lease (10 s), so a batch
# stuck on a hung database is answered (503) in bounded time, and a lease renewal stuck the same way fails
# early enough for the heartbeat to try again before the default lease runs out. A constant, not a fraction
# of --cluster-lease: a long lease would otherwise leave callers waiting minutes, a short one cut off
# legitimate statements. A wait for a lock gives up sooner, after LOCK_TIMEOUT_S (the heartbeat's period at
# the default lease), with its own message ("lock timeout"), which tells a held lock from a slow database.
STATEMENT_TIMEOUT_S = 5.0
LOCK_TIMEOUT_S = 2.5
SELF_FENCE_MARGIN = 0.3  # of the lease: stop writing this long before the lease could have expired


class NotDurable(StorageError):
    """PostgreSQL did not take the batch: nothing of it was acknowledged."""


class Fenced(NotDurable):
    """A partition of the batch has a newer owner (its epoch moved on): this node may not write it any more."""


class Unreachable(NotDurable):
    """PostgreSQL could not be reached, or dropped the connection, so the batch was not acknowledged."""


class LeaseExpired(NotDurable):
    """This node could not renew its leases in time: it sends nothing until it has renewed them."""


@dataclass
class DurabilityStatistics:
    batches: int = 0  # batches PostgreSQL committed
    rows: int = 0  # rows they wrote or deleted
    fenced: int = 0  # batches the fence refused
    unreachable: int = 0  # batches not taken because PostgreSQL was out of reach
    self_fenced: int = 0  # batches not sent because the leases could have expired
    caught_up: int = 0  # unconfirmed batches that PostgreSQL turned out to hold


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a connection string, without its password, for logs and errors."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(an unparseable connection string)"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def connect(
    dsn: str, *, statement_timeout_s: float = STATEMENT_TIMEOUT_S, lock_timeout_s: float = LOCK_TIMEOUT_S
) -> psycopg.Connection[typing.Any]:
    """A connection for one thread's use, whose statements give up after the timeouts; raises Unreachable.

    A statement that hits a timeout fails as a dropped connection would (the writer answers 503 and keeps
    nothing of the batch), so a hung database, or a lock someone holds, never holds a thread forever.
    The timeouts are set once the connection is open, not as startup `options` (which PgBouncer refuses),
    and only where nobody chose for durio: a value set for the connection (`options` in the connection
    string, PGOPTIONS), the role or the database (ALTER ROLE/DATABASE ... SET) is kept.
    """
    try:
        connection = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, application_name="durio")
    except psycopg.Error as exc:
        raise Unreachable(f"PostgreSQL at {describe_dsn(dsn)} cannot be reached: {_reason(exc)}") from None
    try:
        with connection.transaction():
            connection.execute(
                """SELECT set_config(s.name, v.value, false)
                   FROM pg_settings AS s JOIN (VALUES ('statement_timeout', %s), ('lock_timeout', %s)) AS v(name, value)
                   ON s.name = v.name
                   WHERE s.source NOT IN ('client', 'user', 'database', 'database user')""",
                (f"{round(statement_timeout_s * 1000)}ms", f"{round(lock_timeout_s * 1000)}ms"),
            )
    except psycopg.Error as exc:
        connection.close()
        raise Unreachable(f"PostgreSQL at {describe_dsn(dsn)} cannot be reached: {_reason(exc)}") from None
    return connection


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _sqlstate(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if state:
            return typing.cast(str, state)
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True)
class NodeRow:
    name: str
    incarnation: str
    peer_url: str | None
    alive: bool  # its heartbeat is younger than a lease
    silent_s: float  # seconds since its last heartbeat


@dataclass(frozen=True)
class PartitionRow:
    pid: int
    epoch: int
    owner: str | None  # name@incarnation
    valid: bool
    batches: int

    @property
    def owner_name(self) -> str | None:
        return None if self.owner is None else self.owner.split("@")[0]


@dataclass(frozen=True)
class ClusterView:
    nodes: list[NodeRow]
    partitions: list[PartitionRow]


class PostgresDurability:
    """One node's writes to PostgreSQL. `ship` and `catch_up` run in the writer thread; leases in the heartbeat's."""

    def __init__(self, dsn: str, owner: str, cluster_id: str, partitions: int, lease_s: float) -> None:
        self.dsn = dsn
        self.owner = owner
        self.cluster_id = cluster_id
        self.partitions = partitions
        self.lease_s = lease_s
        self.statistics = DurabilityStatistics()
        self._lock = threading.Lock()
        self._epochs: dict[int, int] = {}  # partition -> the epoch this node holds it at
        self._seqs: dict[int, int] = {}  # partition -> batches committed for it, as this node last saw
        self._lost: set[int] = set()
        self._valid_until = 0.0  # monotonic: the leases might expire after this
        self._pending: tuple[WriteSet, dict[int, int]] | None = None  # a batch whose commit was not answered
        self._writer_connection: psycopg.Connection[typing.Any] | None = None
        self._lease_connection: psycopg.Connection[typing.Any] | None = None

    # ------------------------------------------------------------ leases (the heartbeat's thread)

    def _leases(self) -> psycopg.Connection[typing.Any]:
        if self._lease_connection is None or self._lease_connection.closed:
            self._lease_connection = self._ending_idle_transactions(connect(self.dsn, lock_timeout_s=self.lease_s / 4))
        return self._lease_connection

    def _ending_idle_transactions(self, connection: psycopg.Connection[typing.Any]) -> psycopg.Connection[typing.Any]:
        """A node stopped mid-transaction (SIGSTOP, a long GC pause, a cut network) must not hold its row locks
        past its lease, or the node taking its partitions over waits on them: PostgreSQL ends a transaction
        left idle for half a lease. (The lock waits are bounded by connect(): a quarter lease for the heartbeat,
        half a lease for the writer, unless the connection string, role or database chose otherwise.)"""
        try:
            connection.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, false)", (f"{int(self.lease_s * 1000 / 2)}ms",)
            )
            connection.commit()
        except psycopg.Error as exc:
            connection.close()
            raise Unreachable(f"PostgreSQL at {describe_dsn(self.dsn)}: {_reason(exc)}") from None
        return connection

    def _lease_call(self, fn: typing.Callable[[psycopg.Connection[typing.Any]], typing.Any]) -> typing.Any:
        try:
            return fn(self._leases())
        except psycopg.Error as exc:
            self._close(self._lease_connection)
            self._lease_connection = None
            raise Unreachable(f"PostgreSQL at {describe_dsn(self.dsn)}: {_reason(exc)}") from None

    def acquire(self, wanted: typing.Iterable[int]) -> set[int]:
        """Take the leases of `wanted` that can be taken now; returns those still not held."""
        wanted = set(wanted)
        sent_at = time.monotonic()

        def take(connection: psycopg.Connection[typing.Any]) -> dict[int, tuple[int, int]]:
            taken = leases.acquire(connection, wanted - set(self._epochs), self.owner, self.lease_s)
            with connection.transaction():
                seqs = dict(
                    connection.execute(
                        "SELECT pid, batch_seq FROM durio_partitions WHERE pid = ANY(%s)", (sorted(taken),)
                    ).fetchall()
                )
                connection.execute(
                    """INSERT INTO durio_nodes (name, incarnation) VALUES (%s, %s)
                       ON CONFLICT (name) DO UPDATE SET incarnation = EXCLUDED.incarnation, heartbeat_at = now()""",
                    (self.owner.split("@")[0], self.owner),
                )
            return {pid: (epoch, seqs[pid]) for pid, epoch in taken.items()}

        taken = self._lease_call(take)
        with self._lock:
            for pid, (epoch, seq) in taken.items():
                self._epochs[pid] = epoch
                self._seqs[pid] = seq
                self._lost.discard(pid)
            if not self._lost and self._epochs:
                self._valid_until = sent_at + self.lease_s * (1 - SELF_FENCE_MARGIN)
            return wanted - set(self._epochs)

    def renew(self) -> set[int]:
        """Renew every lease held; returns the partitions lost now (another node took them over)."""
        with self._lock:
            epochs = dict(self._epochs)
        sent_at = time.monotonic()

        def extend(connection: psycopg.Connection[typing.Any]) -> set[int]:
            lost = leases.renew(connection, epochs, self.lease_s)
            with connection.transaction():
                connection.execute("UPDATE durio_nodes SET heartbeat_at = now() WHERE incarnation = %s", (self.owner,))
            return lost

        lost = self._lease_call(extend)
        with self._lock:
            if lost:
                self._lost |= lost
                for pid in lost:
                    self._epochs.pop(pid, None)
            if not self._lost:
                self._valid_until = sent_at + self.lease_s * (1 - SELF_FENCE_MARGIN)
        return lost

    def release(self) -> None:
        """Leave the cluster: every lease expires now, and the other nodes stop counting this one as alive (so
        their fair shares grow at once and they take its partitions at their next heartbeat)."""
        with self._lock:
            epochs, self._epochs = dict(self._epochs), {}
            self._valid_until = 0.0

        def leave(connection: psycopg.Connection[typing.Any]) -> None:
            if epochs:
                leases.release(connection, epochs)
            with connection.transaction():
                connection.execute("UPDATE durio_nodes SET heartbeat_at = 'epoch' WHERE incarnation = %s", (self.owner,))

        self._lease_call(leave)

    def release_some(self, partitions: typing.Iterable[int]) -> None:
        """Hand these partitions over now (their lease expires at once); this node writes them no more."""
        with self._lock:
            epochs = {pid: self._epochs.pop(pid) for pid in partitions if pid in self._epochs}
            for pid in epochs:
                self._seqs.pop(pid, None)
        if epochs:
            self._lease_call(lambda connection: leases.release(connection, epochs))

    def forget_lost(self) -> set[int]:
        """Stop counting the partitions lost to other nodes (this node has stopped serving them); returns them."""
        with self._lock:
            lost, self._lost = self._lost, set()
            for pid in lost:
                self._seqs.pop(pid, None)
            return lost

    def beat(self, peer_url: str | None) -> ClusterView:
        """Say this node is alive (and where its peers reach it); return the cluster as PostgreSQL sees it now."""
        name = self.owner.split("@")[0]

        def query(connection: psycopg.Connection[typing.Any]) -> ClusterView:
            with connection.transaction():
                connection.execute(
                    """INSERT INTO durio_nodes (name, incarnation, peer_url) VALUES (%s, %s, %s)
                       ON CONFLICT (name) DO UPDATE SET incarnation = EXCLUDED.incarnation, peer_url = EXCLUDED.peer_url,
                                                        heartbeat_at = now()""",
                    (name, self.owner, peer_url),
                )
                nodes = connection.execute(
                    """SELECT name, incarnation, peer_url, heartbeat_at > now() - make_interval(secs => %s),
                              extract(epoch FROM now() - heartbeat_at)
                       FROM durio_nodes ORDER BY name""",
                    (self.lease_s,),
                ).fetchall()
                partitions = leases.owners(connection)
            return ClusterView(
                nodes=[NodeRow(row[0], row[1], row[2], bool(row[3]), float(row[4])) for row in nodes],
                partitions=[PartitionRow(pid, epoch, owner, bool(valid), seq) for pid, epoch, owner, valid, seq in partitions],
            )

        return typing.cast(ClusterView, self._lease_call(query))

    def batch_seqs(self, partitions: typing.Iterable[int]) -> dict[int, int]:
        """Batches PostgreSQL committed for each of these partitions."""
        pids = sorted(partitions)

        def query(connection: psycopg.Connection[typing.Any]) -> dict[int, int]:
            with connection.transaction():
                return dict(
                    connection.execute("SELECT pid, batch_seq FROM durio_partitions WHERE pid = ANY(%s)", (pids,)).fetchall()
                )

        return typing.cast(dict[int, int], self._lease_call(query))

    @property
    def lost(self) -> set[int]:
        with self._lock:
            return set(self._lost)

    def epochs(self) -> dict[int, int]:
        with self._lock:
            return dict(self._epochs)

    # ------------------------------------------------------------ the local store's receipt

    def receipt(self) -> list[typing.Any]:
        """What the local store keeps beside its rows: whose cache it is, and which batches it holds."""
        with self._lock:
            return [self.cluster_id, [[pid, seq] for pid, seq in sorted(self._seqs.items())]]

    def holds_nothing(self) -> bool:
        """Whether PostgreSQL holds no row and no batch yet (a new cluster, to be seeded from a local store)."""

        def query(connection: psycopg.Connection[typing.Any]) -> bool:
            with connection.transaction():
                row = connection.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM durio_kv) AND "
                    "NOT EXISTS (SELECT 1 FROM durio_partitions WHERE batch_seq > 0)"
                ).fetchone()
            return bool(row and row[0])

        return typing.cast(bool, self._lease_call(query))

    def load_rows(self, partitions: typing.Iterable[int] | None = None) -> typing.Iterator[tuple[bytes, bytes, bytes]]:
        """(LMDB database, key, value) of every row of these partitions (default: those this node holds)."""
        held = sorted(self.epochs() if partitions is None else partitions)
        connection = connect(self.dsn)
        try:
            with connection.transaction(), connection.cursor(name="durio_load") as cursor:
                cursor.itersize = 5000
                # (Meta rows shipped by an earlier version are left out: meta is each store's own now.)
                cursor.execute(
                    "SELECT db, key, value FROM durio_kv WHERE pid = ANY(%s) AND db <> %s ORDER BY pid, db, key",
                    (held, DB_NUMBERS[storage_schema.META]),
                )
                for db, key, value in cursor:
                    yield DB_NAMES[db], bytes(key), bytes(value)
        except psycopg.Error as exc:
            raise Unreachable(f"loading from PostgreSQL at {describe_dsn(self.dsn)} failed: {_reason(exc)}") from None
        finally:
            connection.close()

    # ------------------------------------------------------------ batches (the writer thread)

    def partition_of_row(self, db: bytes, key: bytes) -> int:
        if db == storage_schema.MESSAGES:
            return storage_schema.message_partition(key) % self.partitions
        partition_key = storage_schema.row_partition_key(db, key)
        return GLOBAL_PARTITION if partition_key is None else partition_of_key(partition_key, self.partitions)

    def _writer(self) -> psycopg.Connection[typing.Any]:
        if self._writer_connection is None or self._writer_connection.closed:
            self._writer_connection = self._ending_idle_transactions(connect(self.dsn, lock_timeout_s=self.lease_s / 2))
        return self._writer_connection

    def catch_up(self) -> WriteSet | None:
        if self._pending is None:
            return None
        writes, expected = self._pending
        try:
            connection = self._writer()
            with connection.transaction():
                found = dict(
                    connection.execute(
                        "SELECT pid, batch_seq FROM durio_partitions WHERE pid = ANY(%s)", (sorted(expected),)
                    ).fetchall()
                )
        except psycopg.Error as exc:
            self._drop_writer()
            raise Unreachable(f"PostgreSQL at {describe_dsn(self.dsn)}: {_reason(exc)}") from None
        self._pending = None
        if found != expected:
            return None
        log.warning("PostgreSQL committed a batch of %d rows whose answer was lost: writing it here too", len(writes))
        self.statistics.caught_up += 1
        with self._lock:
            self._seqs.update(expected)
        return writes

    def ship(self, writes: WriteSet) -> list[typing.Any]:
        if not writes:
            return self.receipt()
        by_partition: dict[int, None] = {}
        delivered_to: dict[int, None] = {}  # partitions of other nodes this batch leaves deliveries for
        upserts: tuple[list[int], list[int], list[bytes], list[bytes]] = ([], [], [], [])
        deletes: tuple[list[int], list[int], list[bytes]] = ([], [], [])
        with self._lock:
            held = set(self._epochs)
        for (db, key), value in writes.items():
            pid = self.partition_of_row(db, key)
            if db in DELIVERY_DATABASES and pid not in held and value is not None:
                # A delivery to another node's partition: that node consumes it. It needs no fence of its
                # own: the rows of this node's partitions that produced it are fenced in the same transaction.
                delivered_to[pid] = None
            else:
                by_partition[pid] = None
            if value is None:
                deletes[0].append(pid)
                deletes[1].append(DB_NUMBERS[db])
                deletes[2].append(key)
            else:
                upserts[0].append(pid)
                upserts[1].append(DB_NUMBERS[db])
                upserts[2].append(key)
                upserts[3].append(value)
        pids = sorted(by_partition)
        with self._lock:
            lost = self._lost.intersection(pids) or set(pids) - set(self._epochs)
            if lost:
                self.statistics.fenced += 1
                raise Fenced(f"this node no longer owns partitions {sorted(lost)}: it writes nothing more for them")
            if time.monotonic() > self._valid_until:
                self.statistics.self_fenced += 1
                raise LeaseExpired(
                    "this node's leases could have expired (PostgreSQL did not renew them in time): "
                    "it writes nothing until they are renewed"
                )
            epochs = [self._epochs[pid] for pid in pids]
            expected = {pid: self._seqs[pid] + 1 for pid in pids}
        try:
            connection = self._writer()
            with connection.pipeline(), connection.transaction():
                fence = connection.execute(
                    "SELECT fenced_pid, fenced_seq FROM durio_fence(%s::int[], %s::bigint[])", (pids, epochs)
                )
                if delivered_to:
                    # Wakes the owners as the transaction commits (NOTIFY is transactional).
                    connection.execute(
                        "SELECT pg_notify(%s, pid::text) FROM unnest(%s::int[]) AS pid",
                        (DELIVERIES_CHANNEL, sorted(delivered_to)),
                    )
                # A big batch (an existing store seeding an empty cluster) goes as several statements of the
                # same transaction, so none of them runs into the statement timeout; all or nothing still.
                for start in range(0, len(upserts[0]), ROWS_PER_STATEMENT):
                    connection.execute(
                        """INSERT INTO durio_kv (pid, db, key, value)
                           SELECT * FROM unnest(%s::int[], %s::smallint[], %s::bytea[], %s::bytea[])
                           ON CONFLICT (pid, db, key) DO UPDATE SET value = EXCLUDED.value""",
                        tuple(column[start : start + ROWS_PER_STATEMENT] for column in upserts),
                    )
                for start in range(0, len(deletes[0]), ROWS_PER_STATEMENT):
                    connection.execute(
                        """DELETE FROM durio_kv AS k USING unnest(%s::int[], %s::smallint[], %s::bytea[]) AS d(pid, db, key)
                           WHERE k.pid = d.pid AND k.db = d.db AND k.key = d.key""",
                        tuple(column[start : start + ROWS_PER_STATEMENT] for column in deletes),
                    )
            committed = dict(fence.fetchall())
        except psycopg.Error as exc:
            if _sqlstate(exc) == FENCED_SQLSTATE:
                self.statistics.fenced += 1
                with self._lock:
                    self._lost.update(pids)  # which of them moved on does not matter: this node stops writing them
                log.error("PostgreSQL refused a batch: partitions %s have a newer owner; this node stops writing them", pids)
                raise Fenced(f"partitions {pids} have a newer owner: the batch was refused whole") from None
            broken = self._writer_connection is None or self._writer_connection.closed
            self._drop_writer()
            self.statistics.unreachable += 1
            if broken or isinstance(exc, psycopg.OperationalError):
                self._pending = (writes, expected)  # the COMMIT may have landed: catch_up finds out
            raise Unreachable(f"PostgreSQL at {describe_dsn(self.dsn)} did not take the batch: {_reason(exc)}") from None
        except Unreachable:
            self.statistics.unreachable += 1
            raise
        with self._lock:
            self._seqs.update(committed)
        self.statistics.batches += 1
        self.statistics.rows += len(writes)
        return self.receipt()

    def not_kept(self, writes: WriteSet) -> list[tuple[bytes, bytes]]:
        with self._lock:
            held = set(self._epochs)
        return [
            (db, key)
            for (db, key), value in writes.items()
            if db in DELIVERY_DATABASES and value is not None and self.partition_of_row(db, key) not in held
        ]

    def pending_deliveries(self, partitions: typing.Iterable[int]) -> list[tuple[bytes, bytes, bytes]]:
        """(db, key, value) of the deliveries PostgreSQL holds for these partitions (the writer thread's call)."""
        pids = sorted(partitions)
        if not pids:
            return []
        try:
            connection = self._writer()
            with connection.transaction():
                rows = connection.execute(
                    "SELECT db, key, value FROM durio_kv WHERE pid = ANY(%s) AND db = ANY(%s) ORDER BY pid, db, key",
                    (pids, [DB_NUMBERS[db] for db in sorted(DELIVERY_DATABASES)]),
                ).fetchall()
        except psycopg.Error as exc:
            self._drop_writer()
            raise Unreachable(f"PostgreSQL at {describe_dsn(self.dsn)}: {_reason(exc)}") from None
        return [(DB_NAMES[db], bytes(key), bytes(value)) for db, key, value in rows]

    def take_sequence_block(self) -> int:
        """A block of sequence numbers no other node incarnation has had, and above every earlier block."""

        def take(connection: psycopg.Connection[typing.Any]) -> int:
            with connection.transaction():
                row = connection.execute(
                    "UPDATE durio_cluster SET sequence_block = sequence_block + 1 RETURNING sequence_block"
                ).fetchone()
            assert row is not None
            return int(row[0])

        return typing.cast(int, self._lease_call(take))

    def _drop_writer(self) -> None:
        self._close(self._writer_connection)
        self._writer_connection = None

    @staticmethod
    def _close(connection: psycopg.Connection[typing.Any] | None) -> None:
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass

    def close(self) -> None:
        self._drop_writer()
        self._close(self._lease_connection)
        self._lease_connection = None
