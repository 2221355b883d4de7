"""The timer actor: the one owner of every durable due time.

Timers live in LMDB ordered by due time. The actor keeps only a window of the
earliest ones in a heap, so a million sleeping invocations cost storage, not
memory, and reloads the next window when the heap runs dry. A timer is
deleted by the transition it triggers, in the same write; one that fires
twice (a crash in between) is harmless, because every transition it
triggers checks whether its work is already done.
"""

from __future__ import annotations

import heapq
import logging

import anyio
import anyio.abc
import anyio.lowlevel

from durio.actors.ports import TimerHost
from durio.journal.entries import Completion
from durio.storage.records import TimerKey, TimerKind


log = logging.getLogger("durio.timers")

WINDOW = 4096


class TimerActor:
    def __init__(self, runtime: TimerHost) -> None:
        self._runtime = runtime
        self._heap: list[tuple[int, int, TimerKey]] = []
        self._queued: set[TimerKey] = set()
        self._counter = 0
        # Storage may hold timers due after this (None: everything stored is in the heap).
        self._horizon_ms: int | None = None
        self._wakeup = anyio.Event()
        self.fired = 0
        self._starts_in_flight = 0  # delayed sends fired whose actors exist once their start commits
        self._reload_requested = False

    def add(self, timer: TimerKey) -> None:
        if self._horizon_ms is not None and timer.due_ms > self._horizon_ms:
            return  # the next window load will find it
        self._push(timer)
        if self._heap[0][2] is timer:
            self._wakeup.set()
        if len(self._heap) > 2 * WINDOW:
            self._trim()

    def _trim(self) -> None:
        """Forget all but the earliest window; storage still has the rest."""
        kept = heapq.nsmallest(WINDOW, self._heap)
        boundary_ms = kept[-1][0]
        kept = [item for item in self._heap if item[0] <= boundary_ms]
        heapq.heapify(kept)
        self._heap = kept
        self._queued = {item[2] for item in kept}
        self._horizon_ms = boundary_ms if self._horizon_ms is None else min(self._horizon_ms, boundary_ms)

    def reload(self) -> None:
        """Forget the window and read it again from storage, due timers included.

        After storage failed, timers popped from the heap may never have done their
        work (the write they triggered failed), while storage still has them. Firing
        one twice is harmless: every transition it triggers checks its work is done.
        """
        self._reload_requested = True
        self._wakeup.set()

    def __len__(self) -> int:
        return len(self._heap)

    def _push(self, timer: TimerKey) -> None:
        if timer in self._queued:
            return
        self._queued.add(timer)
        self._counter += 1
        heapq.heappush(self._heap, (timer.due_ms, self._counter, timer))

    async def _load_window(self, from_ms: int) -> None:
        limit = WINDOW
        while True:
            timers = await self._runtime.store.read(lambda txn: txn.timers_from(from_ms, limit + 1))
            if len(timers) <= limit:
                self._horizon_ms = None
                break
            # Cut before the first millisecond that did not fit whole, so none of it is skipped.
            boundary_ms = timers[limit].due_ms
            kept = [t for t in timers if t.due_ms < boundary_ms]
            if kept:
                timers = kept
                self._horizon_ms = boundary_ms - 1
                break
            limit *= 2
        partitions = self._runtime.partitions
        for timer in timers:
            if partitions.is_local(timer.invocation_id):  # a sibling worker fires the others
                self._push(timer)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._load_window(0)
        task_status.started()
        clock = self._runtime.clock
        while True:
            if self._reload_requested:
                self._reload_requested = False
                self._heap.clear()
                self._queued.clear()
                self._horizon_ms = None
                await self._load_window(0)
                continue
            if not self._heap:
                if self._horizon_ms is not None:
                    await self._load_window(self._horizon_ms + 1)
                    continue
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            due_ms = self._heap[0][0]
            if due_ms > clock.now_ms():
                self._wakeup = anyio.Event()
                with anyio.CancelScope(deadline=clock.deadline_for(due_ms)):
                    await self._wakeup.wait()
                continue
            now = clock.now_ms()
            router = self._runtime.router
            while self._heap and self._heap[0][0] <= now:
                timer = self._heap[0][2]
                if self._brings_back(timer) and not router.has_room(self._starts_in_flight):
                    # Fire the rest as actors end; the heap may change meanwhile, so look at its head again.
                    await router.wait_for_room(lambda: self._starts_in_flight)
                    continue
                heapq.heappop(self._heap)
                self._queued.discard(timer)
                self._fire(timer, now)
            await anyio.lowlevel.checkpoint()

    def _brings_back(self, timer: TimerKey) -> bool:
        """Whether firing this timer brings an invocation from storage into memory."""
        if timer.kind == TimerKind.START:
            return True
        return timer.kind == TimerKind.WAKE and not self._runtime.router.is_alive(timer.invocation_id)

    def _start_settled(self, _: object = None) -> None:
        self._starts_in_flight -= 1
        self._runtime.router.room_may_have_changed()

    def _fire(self, timer: TimerKey, now_ms: int) -> None:
        self.fired += 1
        runtime = self._runtime
        if runtime.faults is not None:
            runtime.faults.hit("timer.before_fire")
        if timer.kind == TimerKind.WAKE:
            runtime.router.deliver(timer.invocation_id, Completion(completion_id=timer.completion_id, result=None), timer=timer)
        elif timer.kind == TimerKind.START:
            self._starts_in_flight += 1
            runtime.commit(
                runtime.transitions.start_scheduled(timer.invocation_id, timer, now_ms),
                on_commit=self._start_settled,
                on_error=self._start_settled,
            )
        elif timer.kind == TimerKind.PURGE:
            runtime.commit(runtime.transitions.purge_expired(timer.invocation_id, timer))
        elif timer.kind == TimerKind.SCHEDULE:
            runtime.schedules.fire(timer, now_ms)
        else:
            log.warning("unknown timer kind %s for %s", timer.kind, timer.invocation_id)
        if runtime.faults is not None:
            runtime.faults.hit("timer.after_fire")
