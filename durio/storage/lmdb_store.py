"""The LMDB environment: opening it, reading from it, committing batches to it.

Every method here blocks (LMDB does disk I/O), so callers run them in worker
threads; the Trio side lives in `writer.py` and `Store`. The map grows by
itself: a batch that fills it is aborted, the map doubled and the batch run
again, which is safe because a batch's operations only act through their
transaction.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import typing
from dataclasses import dataclass

import lmdb

from durio.storage import schema
from durio.storage.frames import SCHEMA_VERSION
from durio.storage.txn import Txn

if typing.TYPE_CHECKING:
    from durio.storage.recording import Durability

T = typing.TypeVar("T")

log = logging.getLogger("durio.storage")

INITIAL_MAP_SIZE = 64 * 1024 * 1024
# 1: entries by status and creation time; 2: each entry also holds its target, for filtered listings.
STATUS_INDEX_VERSION = 2


class StorageError(Exception):
    """Storage cannot take a write (the disk is full, the files are unusable)."""


class StoreClosed(StorageError):
    """The store is shut down (or halted by an injected crash): a write was not tried, not refused."""


class StorageFull(StorageError):
    """The disk is full: nothing of the failed batch was written."""


@dataclass(frozen=True, slots=True)
class OpFailed:
    """One operation of a batch raised; its writes were rolled back, the others committed."""

    error: BaseException


class _ResizeGate:
    """Readers share it; growing the map takes it alone (LMDB forbids resizing under open transactions)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._readers = 0
        self._resizing = False

    def acquire_shared(self) -> None:
        with self._lock:
            while self._resizing:
                self._lock.wait()
            self._readers += 1

    def release_shared(self) -> None:
        with self._lock:
            self._readers -= 1
            if self._readers == 0:
                self._lock.notify_all()

    def acquire_exclusive(self) -> None:
        with self._lock:
            self._resizing = True
            while self._readers:
                self._lock.wait()

    def release_exclusive(self) -> None:
        with self._lock:
            self._resizing = False
            self._lock.notify_all()


class LmdbStore:
    """One LMDB environment holding every named database."""

    def __init__(
        self, path: str | os.PathLike[str], *, sync: bool = True, map_size: int = INITIAL_MAP_SIZE, readonly: bool = False
    ) -> None:
        """Open (creating if needed) the environment; `readonly` inspects another process's files."""
        if not readonly:
            os.makedirs(path, exist_ok=True)
        self.path = os.fspath(path)
        self._open_options: dict[str, typing.Any] = {
            "max_dbs": len(schema.ALL_DATABASES) + 4,
            "sync": sync,
            "metasync": sync,
            "max_readers": 512,
            "readahead": False,
            "readonly": readonly,
            "lock": True,
        }
        self._env = lmdb.open(self.path, map_size=map_size, **self._open_options)
        self._gate = _ResizeGate()
        # Runs first in every write transaction (sibling worker processes share this environment: see Runtime).
        self.before_ops: typing.Callable[[Txn], None] | None = None
        # Where every batch must be durable before it commits here (durio.cluster); None: LMDB is the truth.
        self.durability: Durability | None = None
        if readonly:
            try:
                self._dbs = {name: self._env.open_db(name, create=False) for name in schema.ALL_DATABASES}
            except lmdb.NotFoundError as exc:
                raise StorageError(
                    f"{self.path} lacks a database this durio needs ({exc}); "
                    "open it once with `durio serve` to bring it up to date"
                ) from exc
            return
        # Reader slots of processes that died (a worker killed mid-read) would keep old pages from being reused.
        self._env.reader_check()
        # LMDB records a larger map size written by an earlier run; keep it.
        self._env.set_mapsize(max(map_size, self._env.info()["map_size"]))
        self._dbs = {name: self._env.open_db(name) for name in schema.ALL_DATABASES}
        self._check_schema_version()
        self._ensure_status_index()

    def _check_schema_version(self) -> None:
        with self._env.begin(write=True) as raw:
            txn = Txn(raw, self._dbs)
            stored = txn.get_meta("schema_version")
            if stored is None:
                txn.put_meta("schema_version", SCHEMA_VERSION)
            elif stored > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} was written by a newer durio (schema {stored}); this one reads schema {SCHEMA_VERSION}"
                )

    def _ensure_status_index(self) -> None:
        """Data written before the status index (or before it held targets) is indexed afresh, once."""
        while True:
            try:
                with self._env.begin(write=True) as raw:
                    txn = Txn(raw, self._dbs)
                    if (txn.get_meta("status_index") or 0) >= STATUS_INDEX_VERSION:
                        return
                    indexed = txn.rebuild_status_index()
                    txn.put_meta("status_index", STATUS_INDEX_VERSION)
            except lmdb.MapFullError:
                self._grow()
                continue
            if indexed:
                log.info("indexed %d invocations by status", indexed)
            return

    def close(self) -> None:
        self._env.close()

    @property
    def map_size(self) -> int:
        return self._env.info()["map_size"]

    def size_bytes(self) -> int:
        """Bytes in use in the data file."""
        info = self._env.info()
        stat = self._env.stat()
        return (info["last_pgno"] + 1) * stat["psize"]

    def read(self, fn: typing.Callable[[Txn], T]) -> T:
        """Run `fn` in a read-only transaction (blocking: call from a worker thread)."""
        while True:
            self._gate.acquire_shared()
            try:
                with self._env.begin(write=False, buffers=False) as raw:
                    return fn(Txn(raw, self._dbs))
            except lmdb.MapResizedError:
                pass  # another worker process grew the map: adopt its size, then read again
            finally:
                self._gate.release_shared()
            self._adopt_map_size()

    def commit_batch(
        self,
        ops: list[typing.Callable[[Txn], typing.Any]],
        before_commit: typing.Callable[[Txn], None] | None = None,
    ) -> list[typing.Any]:
        """Run every op in one write transaction and commit it with one fsync.

        Each op runs in a nested transaction: one that raises is rolled back
        alone and reported as OpFailed. A full disk fails the whole batch
        with StorageFull and writes nothing.
        """
        while True:
            try:
                return self._commit_once(ops, before_commit)
            except lmdb.MapFullError:
                self._grow()
            except lmdb.MapResizedError:
                self._adopt_map_size()
            except lmdb.DiskError as exc:
                raise StorageFull(f"the disk under {self.path} is full: {exc}") from exc
            except lmdb.Error as exc:
                if _is_disk_full(exc):
                    raise StorageFull(f"the disk under {self.path} is full: {exc}") from exc
                if _environment_gave_up(exc):
                    self._reopen()
                    raise StorageError(f"LMDB failed under {self.path} and was opened again: {exc}") from exc
                raise StorageError(f"LMDB failed under {self.path}: {exc}") from exc
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise StorageFull(f"the disk under {self.path} is full") from exc
                raise StorageError(f"writing under {self.path} failed: {exc}") from exc

    def _commit_once(
        self,
        ops: list[typing.Callable[[Txn], typing.Any]],
        before_commit: typing.Callable[[Txn], None] | None,
    ) -> list[typing.Any]:
        if self.durability is not None:
            return self._commit_shipped(ops, before_commit, self.durability)
        outcomes: list[typing.Any] = []
        with self._env.begin(write=True, buffers=False) as parent:
            if self.before_ops is not None:
                self.before_ops(Txn(parent, self._dbs))
            for op in ops:
                outcomes.append(self._run_nested(parent, op, lambda raw: Txn(raw, self._dbs))[0])
            if before_commit is not None:
                before_commit(Txn(parent, self._dbs))
        return outcomes

    def _run_nested(
        self, parent: typing.Any, op: typing.Callable[[Txn], typing.Any], txn_for: typing.Callable[[typing.Any], Txn]
    ) -> tuple[typing.Any, bool]:
        """Run one op of a batch in a transaction nested in `parent`: (its value, True), or (OpFailed, False)
        with its writes rolled back alone. A full map or disk fails the whole batch instead."""
        child = self._env.begin(write=True, parent=parent, buffers=False)
        try:
            outcome = op(txn_for(child))
        except lmdb.MapFullError:
            child.abort()
            raise
        except lmdb.Error as exc:
            child.abort()
            if _is_disk_full(exc):
                raise
            return OpFailed(exc), False
        except Exception as exc:  # an op's own failure stays with that op
            child.abort()
            return OpFailed(exc), False
        child.commit()
        return outcome, True

    def _commit_shipped(
        self,
        ops: list[typing.Callable[[Txn], typing.Any]],
        before_commit: typing.Callable[[Txn], None] | None,
        durability: Durability,
    ) -> list[typing.Any]:
        """_commit_once, recording the batch's writes and shipping them to `durability` before committing.

        A refusal (a StorageError from `ship`) leaves the `with` by raising, which aborts the LMDB transaction."""
        from durio.storage.recording import RECEIPT_META, RecordingTxn, WriteSet, apply_writes

        outcomes: list[typing.Any] = []
        writes: WriteSet = {}
        with self._env.begin(write=True, buffers=False) as parent:
            missed = durability.catch_up()
            if missed:
                for row in durability.not_kept(missed):
                    missed.pop(row, None)
                apply_writes(Txn(parent, self._dbs), missed)
            if self.before_ops is not None:
                self.before_ops(RecordingTxn(parent, self._dbs, writes))
            for op in ops:
                op_writes: WriteSet = {}
                outcome, committed = self._run_nested(parent, op, lambda raw: RecordingTxn(raw, self._dbs, op_writes, writes))
                if committed:  # a rolled-back op's writes stay with it
                    writes.update(op_writes)
                outcomes.append(outcome)
            if before_commit is not None:
                before_commit(RecordingTxn(parent, self._dbs, writes))
            receipt = durability.ship(writes)
            local = Txn(parent, self._dbs)
            for db, key in durability.not_kept(writes):
                local._delete(db, key)
            local.put_meta(RECEIPT_META, receipt)
        return outcomes

    def shipped_rows(self) -> typing.Iterator[tuple[bytes, bytes, bytes]]:
        """(db, key, value) of every row a Durability holds, to seed it from this store (blocking)."""
        from durio.storage.recording import RECEIPT_META, SHIPPED_DATABASES

        with self._env.begin(write=False, buffers=False) as raw:
            for db in SHIPPED_DATABASES:
                for key, value in raw.cursor(db=self._dbs[db]):
                    if db != schema.META or key != RECEIPT_META.encode():
                        yield db, bytes(key), bytes(value)

    def replace_all(self, rows: typing.Iterable[tuple[bytes, bytes, bytes]], receipt: typing.Any) -> int:
        """Empty the store, write `rows` (db, key, value) into it and index them: a store loaded from its truth.

        Returns how many rows were written. Blocking; the store must not be serving yet."""
        from durio.storage.recording import RECEIPT_META

        while True:
            rows = list(rows)
            try:
                with self._env.begin(write=True, buffers=False) as raw:
                    for db in schema.ALL_DATABASES:
                        raw.drop(self._dbs[db], delete=False)
                    for db, key, value in rows:
                        raw.put(key, value, db=self._dbs[db])
                    txn = Txn(raw, self._dbs)
                    txn.rebuild_status_index()
                    txn.put_meta("status_index", STATUS_INDEX_VERSION)
                    if txn.get_meta("schema_version") is None:
                        txn.put_meta("schema_version", SCHEMA_VERSION)
                    txn.put_meta(RECEIPT_META, receipt)
                return len(rows)
            except lmdb.MapFullError:
                self._grow()

    def replace_rows(
        self, drop: typing.Callable[[bytes, bytes], bool], rows: typing.Iterable[tuple[bytes, bytes, bytes]], receipt: typing.Any
    ) -> tuple[int, int]:
        """Delete every shipped row `drop` names, then write `rows` (db, key, value), in one transaction, with
        the status index kept: a node's store after its partitions changed. Returns (dropped, written). Blocking."""
        from durio.storage.recording import RECEIPT_META, SHIPPED_DATABASES, WriteSet, apply_writes

        rows = list(rows)
        while True:
            try:
                with self._env.begin(write=True, buffers=False) as raw:
                    writes: WriteSet = {}
                    for db in SHIPPED_DATABASES:
                        for key, _ in raw.cursor(db=self._dbs[db]):
                            if drop(db, bytes(key)):
                                writes[db, bytes(key)] = None
                    dropped = len(writes)
                    for db, key, value in rows:
                        writes[db, key] = value
                    txn = Txn(raw, self._dbs)
                    apply_writes(txn, writes)
                    txn.put_meta(RECEIPT_META, receipt)
                return dropped, len(rows)
            except lmdb.MapFullError:
                self._grow()

    def _reopen(self) -> None:
        """Open the environment again, from what its files durably hold.

        LMDB gives up on an environment whose commit failed while writing (a disk that filled mid-commit):
        every later write transaction fails, with EIO or MDB_PANIC, until it is opened again. Seen under
        the disk-full soak: one worker's writes failed for minutes after the disk had room again."""
        self._gate.acquire_exclusive()
        try:
            map_size = self._env.info()["map_size"]
            self._env.close()
            self._env = lmdb.open(self.path, map_size=map_size, **self._open_options)
            self._dbs = {name: self._env.open_db(name) for name in schema.ALL_DATABASES}
            log.warning("opened the LMDB environment under %s again after a failed commit", self.path)
        finally:
            self._gate.release_exclusive()

    def _adopt_map_size(self) -> None:
        """Take the map size another process (a sibling worker) grew the shared environment to."""
        self._gate.acquire_exclusive()
        try:
            self._env.set_mapsize(0)
        finally:
            self._gate.release_exclusive()

    def _grow(self) -> None:
        self._gate.acquire_exclusive()
        try:
            self._env.set_mapsize(self._env.info()["map_size"] * 2)
        finally:
            self._gate.release_exclusive()


def _environment_gave_up(exc: BaseException) -> bool:
    """LMDB's answer once it has marked the environment unusable (its fatal-error flag), or an I/O error."""
    return isinstance(exc, lmdb.PanicError) or "Input/output error" in str(exc)


def _is_disk_full(exc: BaseException) -> bool:
    text = str(exc)
    return "No space left" in text or "ENOSPC" in text
