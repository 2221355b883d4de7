"""The write set of a batch, for a store whose truth lives elsewhere (durio.cluster: PostgreSQL).

When a `Durability` is set on the LmdbStore, every batch runs over `RecordingTxn`s:
each put, delete and deleted prefix is noted as `(db, key) -> value | None`
(None: deleted), last write wins, and an op that fails and is rolled back takes
its notes with it. The batch's write set goes to the durability before LMDB
commits; if it is refused, the LMDB transaction is aborted, so the local store
never holds what the truth does not.

The status indexes are not recorded: they are derived from the invocation
records and rebuilt when a store is loaded from the truth.

Rejected: a recorder inside `Txn` itself (an `if` on every put of every store,
clustered or not). The subclass keeps the LMDB-only path exactly as it was.
"""

from __future__ import annotations

import typing

from durio.storage import schema as s
from durio.storage.frames import unpack_record
from durio.storage.records import InvocationRecord
from durio.storage.txn import Txn

# (db, key) -> the value the batch leaves there, or None when the batch deleted it.
WriteSet = dict[tuple[bytes, bytes], "bytes | None"]

# The status indexes are derived; META is each store's own (its sequence high-water mark, schema version,
# receipt): a node of a cluster takes its sequence numbers from a block PostgreSQL hands it (durio.cluster).
UNSHIPPED_DATABASES = frozenset((*s.STATUS_INDEXES.values(), s.META))
# Rows one partition leaves for another's owner to consume: they may be written to any partition.
DELIVERY_DATABASES = frozenset((s.OUTBOX, s.MESSAGES))
SHIPPED_DATABASES = tuple(db for db in s.ALL_DATABASES if db not in UNSHIPPED_DATABASES)
# The local store's record of which batches of the truth it holds (durio.cluster writes and reads it).
RECEIPT_META = "cluster_receipt"


class Durability(typing.Protocol):
    """Where a batch's writes must be durable before the local commit (called from the writer thread)."""

    def catch_up(self) -> WriteSet | None:
        """Writes the truth holds but this store may not (a batch whose commit was not confirmed), or None.

        Raises a StorageError when that cannot be known yet (the truth is unreachable)."""
        ...

    def ship(self, writes: WriteSet) -> typing.Any:
        """Make `writes` durable, all or nothing; return the receipt to keep beside them in the local store.

        Raises a StorageError (nothing of the batch is acknowledged) when refused or unreachable."""
        ...

    def not_kept(self, writes: WriteSet) -> list[tuple[bytes, bytes]]:
        """The rows of a shipped batch the local store must not keep: deliveries to partitions another node
        owns, which that node consumes from the truth."""
        ...


class RecordingTxn(Txn):
    """A Txn that notes what it writes into `writes`."""

    def __init__(self, txn: typing.Any, dbs: dict[bytes, typing.Any], writes: WriteSet, batch: WriteSet | None = None) -> None:
        super().__init__(txn, dbs)
        self.writes = writes
        # What the batch's earlier ops wrote (not yet in the truth): an op that reads the truth checks it.
        self.batch: WriteSet = batch if batch is not None else {}

    def _put(self, name: bytes, key: bytes, value: bytes) -> None:
        super()._put(name, key, value)
        if name not in UNSHIPPED_DATABASES:
            self.writes[name, bytes(key)] = bytes(value)

    def _delete(self, name: bytes, key: bytes) -> bool:
        deleted = super()._delete(name, key)
        if deleted and name not in UNSHIPPED_DATABASES:
            self.writes[name, bytes(key)] = None
        return deleted

    def _delete_prefix(self, name: bytes, prefix: bytes) -> int:
        if name in UNSHIPPED_DATABASES:
            return super()._delete_prefix(name, prefix)
        cursor = self._cursor(name)
        deleted = 0
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                key = bytes(cursor.key())
                if not cursor.delete():
                    break
                self.writes[name, key] = None
                deleted += 1
        return deleted


def apply_writes(txn: Txn, writes: WriteSet) -> None:
    """Write a write set into a local store; invocation records through `Txn`, so the status index follows."""
    for (db, key), value in writes.items():
        if db == s.INVOCATIONS:
            invocation_id = s.id_from_key(key)
            txn.get_invocation(invocation_id)  # learn how the index lists it now
            if value is None:
                txn.delete_invocation(invocation_id)
            else:
                txn.put_invocation(unpack_record(value, InvocationRecord, f"the record of {invocation_id}"))
                txn._put(db, key, value)  # the very bytes the truth holds
        elif value is None:
            txn._delete(db, key)
        else:
            txn._put(db, key, value)
