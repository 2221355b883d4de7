"""durio's tables in PostgreSQL, created and migrated by durio itself.

`durio_schema` holds the version of the tables; `migrate` applies the missing
steps in one transaction under an advisory lock, so nodes starting together
migrate once. Tables (SCALE-OUT.md §5):

- durio_cluster: one row, the cluster's id (so a local store knows whose cache it
  is) and its number of partitions, fixed at creation.
- durio_partitions: per partition, the lease: `epoch` counts owners, `expires_at`
  is on the database's clock, `batch_seq` counts the batches committed for it.
  Partition -1 is the global rows (meta, deployments, schedules).
- durio_kv: the rows of every partition, as the local LMDB store holds them
  (`db` numbers the LMDB database, DB_NUMBERS).
- durio_nodes: who is alive, by heartbeat, and the URL its peers reach it at.

`durio_fence` is the fence: it counts one more batch for each partition the batch
touches, but only where the caller's epoch is still the partition's, and raises
SQLSTATE DU001 otherwise, which aborts the whole transaction (Temporal's
`range_id` check). Its UPDATE locks those rows until commit, so an `acquire`
(which bumps the epoch) waits for an in-flight batch or fences it: a batch never
commits under an epoch that is no longer current.
"""

from __future__ import annotations

import typing

from durio.storage import schema as storage

GLOBAL_PARTITION = -1
FENCED_SQLSTATE = "DU001"

# The LMDB database of each row, as stored in durio_kv.db. Never renumber: rows already stored keep theirs.
DB_NUMBERS: dict[bytes, int] = {
    storage.INVOCATIONS: 1,
    storage.JOURNAL: 2,
    storage.STATE: 3,
    storage.INBOX: 4,
    storage.TIMERS: 5,
    storage.OUTBOX: 6,
    storage.REPLY_TO: 7,
    storage.PROMISES: 8,
    storage.PROMISE_WAITERS: 9,
    storage.SIGNALS: 10,
    storage.EVENTS: 11,
    storage.DEPLOYMENTS: 12,
    storage.META: 13,
    storage.SCHEDULES: 14,
    storage.MESSAGES: 15,
}
DB_NAMES = {number: name for name, number in DB_NUMBERS.items()}

_V1 = [
    """CREATE TABLE durio_cluster (
         id text PRIMARY KEY,
         partitions int NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE durio_partitions (
         pid int PRIMARY KEY,
         epoch bigint NOT NULL DEFAULT 0,
         owner text,
         expires_at timestamptz,
         batch_seq bigint NOT NULL DEFAULT 0)""",
    """CREATE TABLE durio_kv (
         pid int NOT NULL,
         db smallint NOT NULL,
         key bytea NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (pid, db, key))""",
    """CREATE TABLE durio_nodes (
         name text PRIMARY KEY,
         incarnation text NOT NULL,
         started_at timestamptz NOT NULL DEFAULT now(),
         heartbeat_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE FUNCTION durio_fence(pids int[], epochs bigint[]) RETURNS TABLE(fenced_pid int, fenced_seq bigint)
        LANGUAGE plpgsql AS $$
        DECLARE
          moved int;
        BEGIN
          RETURN QUERY
            UPDATE durio_partitions AS p SET batch_seq = p.batch_seq + 1
            FROM unnest(pids, epochs) AS f(pid, epoch)
            WHERE p.pid = f.pid AND p.epoch = f.epoch
            RETURNING p.pid, p.batch_seq;
          GET DIAGNOSTICS moved = ROW_COUNT;
          IF moved <> cardinality(pids) THEN
            RAISE EXCEPTION 'durio: a partition of this batch has a newer owner (epochs %, partitions %)', epochs, pids
              USING ERRCODE = '{FENCED_SQLSTATE}';
          END IF;
        END $$""",
]

# Several nodes: each node incarnation takes its sequence numbers from a block of its own (so numbers written
# into one partition by different nodes never collide, and a later block sorts after every earlier one); nodes
# advertise where their peers reach them.
_V2 = [
    "ALTER TABLE durio_cluster ADD COLUMN sequence_block bigint NOT NULL DEFAULT 0",
    "ALTER TABLE durio_nodes ADD COLUMN peer_url text",
]

# Version n is reached by running MIGRATIONS[n - 1]. Append; never edit a step that has shipped.
MIGRATIONS: list[list[str]] = [_V1, _V2]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(Exception):
    """The database's durio tables are newer than this durio understands."""


def migrate(connection: typing.Any) -> int:
    """Bring durio's tables up to SCHEMA_VERSION; returns the version found before. One transaction."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext('durio_schema'))")
        connection.execute("CREATE TABLE IF NOT EXISTS durio_schema (version int NOT NULL)")
        row = connection.execute("SELECT version FROM durio_schema").fetchone()
        found = 0 if row is None else row[0]
        if found > SCHEMA_VERSION:
            raise SchemaError(f"the database holds durio's tables at version {found}; this durio knows up to {SCHEMA_VERSION}")
        for steps in MIGRATIONS[found:]:
            for statement in steps:
                connection.execute(statement)
        if row is None:
            connection.execute("INSERT INTO durio_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        else:
            connection.execute("UPDATE durio_schema SET version = %s", (SCHEMA_VERSION,))
    return found


def ensure_cluster(connection: typing.Any, cluster_id: str, partitions: int) -> tuple[str, int]:
    """The cluster's (id, partitions): created with these on first use (with a lease row per partition)."""
    with connection.transaction():
        connection.execute("LOCK TABLE durio_cluster IN EXCLUSIVE MODE")
        row = connection.execute("SELECT id, partitions FROM durio_cluster").fetchone()
        if row is not None:
            return row[0], row[1]
        connection.execute("INSERT INTO durio_cluster (id, partitions) VALUES (%s, %s)", (cluster_id, partitions))
        connection.execute(
            "INSERT INTO durio_partitions (pid) SELECT generate_series(%s, %s - 1)", (GLOBAL_PARTITION, partitions)
        )
    return cluster_id, partitions
