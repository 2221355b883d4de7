"""The group-commit writer on a real LMDB store: batching, per-op rollback, callback order, shutdown."""

from __future__ import annotations

import typing

import anyio
import pytest

from durio.storage.lmdb_store import LmdbStore, StorageError, StoreClosed
from durio.storage.txn import Txn
from durio.storage.writer import GroupCommitWriter


def put(name: str, value: int) -> typing.Callable[[Txn], int]:
    def op(txn: Txn) -> int:
        txn.put_meta(name, value)
        return value

    return op


def stored(store: LmdbStore, name: str) -> typing.Any:
    return store.read(lambda txn: txn.get_meta(name))


class Refused(Exception):
    pass


def put_then_raise(name: str) -> typing.Callable[[Txn], None]:
    def op(txn: Txn) -> None:
        txn.put_meta(name, 1)
        raise Refused(f"{name} refused after writing")

    return op


async def test_writes_submitted_together_commit_in_one_batch(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)
    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        tickets = [writer.submit(put(f"n{i}", i)) for i in range(5)]
        assert [await ticket.wait() for ticket in tickets] == [0, 1, 2, 3, 4]
        statistics = writer.statistics()
        assert (statistics.batches, statistics.ops, statistics.largest_batch, statistics.queued) == (1, 5, 5, 0)
        assert await writer.write(put("later", 9)) == 9
        assert writer.statistics().batches == 2
        task_group.cancel_scope.cancel()
    assert [stored(lmdb_store, f"n{i}") for i in range(5)] == [0, 1, 2, 3, 4]


async def test_an_op_that_raises_is_rolled_back_alone_and_its_ticket_raises(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)
    errors: list[BaseException] = []
    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        before = writer.submit(put("before", 1))
        failing = writer.submit(
            put_then_raise("failing"), on_commit=lambda _: errors.append(AssertionError("ran")), on_error=errors.append
        )
        after = writer.submit(put("after", 3))
        assert await before.wait() == 1
        with pytest.raises(Refused, match="failing refused"):
            await failing.wait()
        assert await after.wait() == 3
        assert writer.statistics().batches == 1
        task_group.cancel_scope.cancel()
    assert [type(error) for error in errors] == [Refused], "on_error ran, on_commit did not"
    assert (stored(lmdb_store, "before"), stored(lmdb_store, "failing"), stored(lmdb_store, "after")) == (1, None, 3)


async def test_on_commit_callbacks_run_in_submission_order_before_the_tickets_wake(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)
    order: list[str] = []
    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        tickets = [
            writer.submit(put(name, i), on_commit=lambda outcome, name=name: order.append(f"{name}={outcome}"))
            for i, name in enumerate(["c", "a", "b"])
        ]
        await tickets[0].wait()
        assert order == ["c=0", "a=1", "b=2"], "every callback of the batch ran before the first waiter woke"
        assert all(ticket.done for ticket in tickets)
        task_group.cancel_scope.cancel()


async def test_a_failing_on_commit_callback_neither_fails_the_write_nor_stops_the_writer(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)

    def broken(_: object) -> None:
        raise RuntimeError("a bug in a callback")

    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        assert await writer.write(put("x", 1), on_commit=broken) == 1
        assert await writer.write(put("y", 2)) == 2
        task_group.cancel_scope.cancel()
    assert (stored(lmdb_store, "x"), stored(lmdb_store, "y")) == (1, 2)


async def test_a_write_submitted_after_the_writer_stopped_fails_at_once_with_store_closed(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)
    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        assert await writer.write(put("before", 1)) == 1
        task_group.cancel_scope.cancel()
    late = writer.submit(put("late", 2))
    assert late.done, "nobody is left to commit it, so it is not queued"
    with pytest.raises(StoreClosed):
        await late.wait()
    assert (stored(lmdb_store, "before"), stored(lmdb_store, "late")) == (1, None)


async def test_a_batch_that_storage_cannot_take_fails_every_write_in_it(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)
    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        lmdb_store.close()  # the files are unusable from here on
        tickets = [writer.submit(put(f"n{i}", i)) for i in range(3)]
        for ticket in tickets:
            with pytest.raises(StorageError, match="LMDB failed") as raised:
                await ticket.wait()
            assert not isinstance(raised.value, StoreClosed), "tried and refused, not skipped"
        assert writer.statistics().batches == 0
        task_group.cancel_scope.cancel()


async def test_a_halted_writer_makes_nothing_durable(lmdb_store: LmdbStore) -> None:
    writer = GroupCommitWriter(lmdb_store)
    async with anyio.create_task_group() as task_group:
        await task_group.start(writer.run)
        queued = writer.submit(put("queued", 1))
        writer.halt()
        with pytest.raises(StoreClosed):
            await queued.wait()
        with pytest.raises(StoreClosed):
            await writer.write(put("after", 2))
        task_group.cancel_scope.cancel()
    assert (stored(lmdb_store, "queued"), stored(lmdb_store, "after")) == (None, None)
