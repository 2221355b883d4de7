"""The timer actor's window over storage: what it loads, what it leaves in LMDB, and that every timer fires once.

Storage is real LMDB; the runtime around the actor is a stand-in with a fixed clock and a router that
records what it is handed (the real router would delete each timer through a transition; this one does not,
so a timer read twice from storage would be delivered twice and show up in the counts).
"""

from __future__ import annotations

import collections
import math
import typing

import anyio
import pytest

from durio import ids
from durio.actors import timers
from durio.actors.ports import TimerHost
from durio.actors.timers import TimerActor
from durio.journal.entries import Completion, Notification
from durio.partitions import PartitionTable
from durio.storage import Store
from durio.storage.lmdb_store import LmdbStore
from durio.storage.records import TimerKey, TimerKind

WINDOW = 4
NOW_MS = 1_000_000


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def deadline_for(self, wall_ms: int) -> float:
        return math.inf  # nothing becomes due while a test runs unless it moves `now` and adds a timer


class RecordingRouter:
    def __init__(self) -> None:
        self.delivered: list[tuple[TimerKey, Notification]] = []
        self.heap_sizes: list[int] = []
        self.actor: TimerActor | None = None
        self._expected = 0
        self._enough = anyio.Event()

    def expect(self, count: int) -> None:
        self._expected = count
        self._enough = anyio.Event()
        if len(self.delivered) >= count:
            self._enough.set()

    async def wait_for_expected(self) -> None:
        with anyio.fail_after(10):
            await self._enough.wait()

    def deliver(
        self, invocation_id: str, notification: Notification, outbox_seq: int | None = None, timer: TimerKey | None = None
    ) -> None:
        assert timer is not None and timer.invocation_id == invocation_id
        assert self.actor is not None
        self.delivered.append((timer, notification))
        self.heap_sizes.append(len(self.actor))
        if len(self.delivered) >= self._expected:
            self._enough.set()

    def is_alive(self, invocation_id: str) -> bool:
        return False

    def has_room(self, reserved: int = 0) -> bool:
        return True


class StandInRuntime:
    """The part of the TimerHost port that WAKE timers use (one process owning every partition by default)."""

    def __init__(
        self, store: Store, clock: FixedClock, router: RecordingRouter, partitions: PartitionTable = PartitionTable.single()
    ) -> None:
        self.store = store
        self.clock = clock
        self.router = router
        self.faults = None
        self.partitions = partitions


@pytest.fixture(autouse=True)
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "WINDOW", WINDOW)


def wake_timers(due_times: list[int]) -> list[TimerKey]:
    invocation_id = ids.new_invocation_id(None, 0)
    return [TimerKey(due_ms, invocation_id, TimerKind.WAKE, completion_id) for completion_id, due_ms in enumerate(due_times, 1)]


def store_timers(lmdb_store: LmdbStore, stored: list[TimerKey]) -> None:
    def op(txn: typing.Any) -> None:
        for timer in stored:
            txn.put_timer(timer)

    (outcome,) = lmdb_store.commit_batch([op])
    assert outcome is None


async def run_actor(
    lmdb_store: LmdbStore, now_ms: int, task_group: typing.Any, partitions: PartitionTable = PartitionTable.single()
) -> tuple[TimerActor, RecordingRouter]:
    router = RecordingRouter()
    actor = TimerActor(typing.cast(TimerHost, StandInRuntime(Store(lmdb_store), FixedClock(now_ms), router, partitions)))
    router.actor = actor
    await task_group.start(actor.run)
    return actor, router


@pytest.mark.parametrize(
    "due_times",
    [
        list(range(1, 11)),  # ten distinct milliseconds: three windows
        [1, 2, 3, 4, 4, 4, 5],  # a millisecond that straddles the window's edge
        [7] * 6,  # more timers in one millisecond than a window holds
    ],
    ids=["distinct", "straddling", "one-millisecond"],
)
async def test_every_stored_timer_fires_once_in_due_order_through_a_window_at_a_time(
    lmdb_store: LmdbStore,
    due_times: list[int],
) -> None:
    stored = wake_timers(due_times)
    store_timers(lmdb_store, stored)
    async with anyio.create_task_group() as task_group:
        _, router = await run_actor(lmdb_store, NOW_MS, task_group)
        router.expect(len(stored))
        await router.wait_for_expected()
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    fired = [timer for timer, _ in router.delivered]
    assert collections.Counter(fired) == collections.Counter(stored), "each stored timer fires exactly once"
    assert [timer.due_ms for timer in fired] == sorted(due_times)
    assert [note for _, note in router.delivered] == [Completion(completion_id=timer.completion_id) for timer in fired]
    if len(set(due_times)) == len(due_times):
        assert max(router.heap_sizes) < WINDOW, "the heap never held more than one window"


async def test_only_the_earliest_window_is_loaded_and_a_later_timer_is_left_to_storage(lmdb_store: LmdbStore) -> None:
    stored = wake_timers([NOW_MS + 10 * i for i in range(1, 11)])
    store_timers(lmdb_store, stored)
    async with anyio.create_task_group() as task_group:
        actor, router = await run_actor(lmdb_store, NOW_MS, task_group)
        assert len(actor) == WINDOW
        horizon_ms = stored[WINDOW].due_ms - 1
        actor.add(TimerKey(horizon_ms + 1, stored[0].invocation_id, TimerKind.WAKE, 99))
        assert len(actor) == WINDOW, "beyond the horizon: the next window load will find it in storage"
        actor.add(TimerKey(horizon_ms, stored[0].invocation_id, TimerKind.WAKE, 98))
        assert len(actor) == WINDOW + 1
        actor.add(stored[0])
        assert len(actor) == WINDOW + 1, "a timer already in the heap is not queued twice"
        assert router.delivered == []
        task_group.cancel_scope.cancel()


async def test_adding_past_two_windows_trims_the_heap_back_to_the_earliest_window(lmdb_store: LmdbStore) -> None:
    async with anyio.create_task_group() as task_group:
        actor, _ = await run_actor(lmdb_store, NOW_MS, task_group)
        added = wake_timers([NOW_MS + 100 - i for i in range(2 * WINDOW + 1)])  # latest first
        for timer in added:
            actor.add(timer)
        assert len(actor) == WINDOW
        earliest = sorted(added)[:WINDOW]
        actor.add(earliest[0])
        assert len(actor) == WINDOW, "the earliest are the ones kept"
        actor.add(TimerKey(earliest[-1].due_ms + 1, earliest[0].invocation_id, TimerKind.WAKE, 99))
        assert len(actor) == WINDOW, "past the trimmed window's horizon: left to storage"
        task_group.cancel_scope.cancel()


async def test_a_reload_reads_storage_again_and_fires_what_is_still_there(lmdb_store: LmdbStore) -> None:
    stored = wake_timers([1, 2, 3])
    store_timers(lmdb_store, stored)
    async with anyio.create_task_group() as task_group:
        actor, router = await run_actor(lmdb_store, NOW_MS, task_group)
        router.expect(3)
        await router.wait_for_expected()
        router.expect(6)
        actor.reload()  # as after a failed write: these timers' work may not have been done
        await router.wait_for_expected()
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    assert [timer for timer, _ in router.delivered] == stored + stored


def id_in_partition(table: PartitionTable, partition: int) -> str:
    for number in range(10_000):
        invocation_id = ids.new_invocation_id(f"key-{number}", 0)
        if table.of_id(invocation_id) == partition:
            return invocation_id
    raise AssertionError(f"no key of partition {partition} found")


async def test_a_worker_fires_only_the_timers_of_its_own_partitions_window_after_window(lmdb_store: LmdbStore) -> None:
    table = PartitionTable(2, frozenset({0}))
    mine, theirs = id_in_partition(table, 0), id_in_partition(table, 1)
    # Ten windows' worth of alternating owners, so that whole windows hold nothing of this worker's.
    stored = [TimerKey(due_ms, mine if due_ms % 10 == 0 else theirs, TimerKind.WAKE, due_ms) for due_ms in range(1, 41)]
    store_timers(lmdb_store, stored)
    expected = [timer for timer in stored if timer.invocation_id == mine]
    async with anyio.create_task_group() as task_group:
        _, router = await run_actor(lmdb_store, NOW_MS, task_group, table)
        router.expect(len(expected))
        await router.wait_for_expected()
        await anyio.wait_all_tasks_blocked()
        task_group.cancel_scope.cancel()
    assert [timer for timer, _ in router.delivered] == expected
