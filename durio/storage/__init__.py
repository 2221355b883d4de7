"""Durable storage: one LMDB environment, msgpack frames, a group-commit writer."""

from __future__ import annotations

import contextlib
import os
import typing

import anyio
import anyio.to_thread

from durio.storage.lmdb_store import LmdbStore, StorageError, StorageFull, StoreClosed
from durio.storage.txn import Txn
from durio.storage.writer import GroupCommitWriter, Op, OnCommit, Ticket

T = typing.TypeVar("T")

__all__ = ["Store", "open_store", "StorageError", "StorageFull", "StoreClosed", "Txn", "Ticket"]


class Store:
    """Reads run in worker threads; writes go through the group-commit writer."""

    def __init__(self, backend: LmdbStore) -> None:
        self.backend = backend
        self.writer = GroupCommitWriter(backend)

    async def read(self, fn: typing.Callable[[Txn], T]) -> T:
        return await anyio.to_thread.run_sync(self.backend.read, fn)

    def read_blocking(self, fn: typing.Callable[[Txn], T]) -> T:
        """For start-up and tests, before the loop serves anyone."""
        return self.backend.read(fn)

    def submit(
        self, op: Op, on_commit: OnCommit | None = None, on_error: typing.Callable[[BaseException], None] | None = None
    ) -> Ticket:
        return self.writer.submit(op, on_commit, on_error)

    async def write(self, op: Op, on_commit: OnCommit | None = None) -> typing.Any:
        return await self.writer.write(op, on_commit)


@contextlib.asynccontextmanager
async def open_store(
    path: str | os.PathLike[str], *, sync: bool = True, map_size: int | None = None, durability: typing.Any = None
) -> typing.AsyncIterator[Store]:
    """Open the store and run its writer for the duration of the block.

    `durability` (a durio.storage.recording.Durability): where every batch must be durable before it commits."""
    options = {"sync": sync} if map_size is None else {"sync": sync, "map_size": map_size}
    backend = await anyio.to_thread.run_sync(lambda: LmdbStore(path, **options))
    backend.durability = durability
    store = Store(backend)
    try:
        async with anyio.create_task_group() as nursery:
            await nursery.start(store.writer.run)
            yield store
            nursery.cancel_scope.cancel()
    finally:
        backend.close()
