"""The live side of schedules: due timers in, durable steps out.

The timer actor owns every schedule's next-tick timer along with all other durable timers and
calls `fire` when one is due; the scheduler commits the schedule's `evaluate` step. The only work
of its own is waiting for the invocations a buffered tick stands behind (buffer_one, and
cancel_other's cancelled runs): one task per such invocation attaches to it, as an ingress client
would, and evaluates the schedule once it has ended. Those waits are in memory, so `run` starts
them again from storage after a restart.

At start, before any timer fires, `run` makes the schedules declared in code (`@durio.scheduled`)
match the code being served.
"""

from __future__ import annotations

import logging
import typing

import anyio
import anyio.abc

from durio.actors.ports import SchedulerHost
from durio.schedules.declare import declared_schedules
from durio.schedules.specs import ScheduleSpec
from durio.schedules.state import ScheduleRecord, schedule_key
from durio.schedules.transitions import Outcome, ScheduleSteps
from durio.storage.records import InvocationRecord, TimerKey


log = logging.getLogger("durio.schedules")


class Scheduler:
    def __init__(self, runtime: SchedulerHost, nursery: anyio.abc.TaskGroup) -> None:
        self._runtime = runtime
        self.steps = ScheduleSteps(runtime.transitions, runtime.registry)
        self._nursery = nursery  # the runtime's supervisor: what waits for a buffered tick's invocations runs there
        self._watching: set[tuple[str, str]] = set()  # (schedule key, invocation id)

    async def start(self) -> None:
        """Sync the schedules declared in code into storage, and watch again what buffered ticks wait for."""
        runtime = self._runtime
        specs = declared_schedules(runtime.registry.services.values())
        summary = await runtime.write(self.steps.sync_declared(specs, runtime.clock.now_ms(), runtime.partitions.is_local))
        for change in ("created", "replaced", "deleted"):
            if summary[change]:
                log.info("schedules declared in code: %s %s", change, ", ".join(summary[change]))
        for schedule_id in summary["took_over"]:
            log.warning("the schedule %s, made through the admin API, is now the one declared in code", schedule_id)
        records = await runtime.store.read(lambda txn: txn.schedules())
        for raw in records:
            record = ScheduleRecord.from_stored(raw)
            # With several workers, the one that owns the schedule's partition (and fires its timer) watches.
            if record.buffered is not None and runtime.partitions.is_local(record.key):
                # What the buffered tick waited for may have ended while durio was down: evaluate then.
                self._nursery.start_soon(self._evaluate_after, record.key, record.running[-1] if record.running else None)

    # ------------------------------------------------------------ ticks

    def fire(self, timer: TimerKey, now_ms: int) -> None:
        """A schedule's timer is due (called by the timer actor)."""
        self._commit(self.steps.evaluate(timer.invocation_id, now_ms, timer), timer.invocation_id)

    def _commit(self, op: typing.Any, key: str) -> None:
        def committed(outcome: Outcome) -> None:
            self._watch(key, outcome.watch)

        self._runtime.commit(op, on_commit=committed)

    def _watch(self, key: str, invocation_ids: list[str]) -> None:
        """Evaluate the schedule again when each of these invocations has ended (a buffered tick waits for them)."""
        for invocation_id in invocation_ids:
            if (key, invocation_id) not in self._watching:
                self._watching.add((key, invocation_id))
                self._nursery.start_soon(self._evaluate_after, key, invocation_id)

    async def _evaluate_after(self, key: str, invocation_id: str | None) -> None:
        try:
            if invocation_id is not None:
                await self._runtime.attach(invocation_id)
        finally:
            self._watching.discard((key, typing.cast(str, invocation_id)))
        self._commit(self.steps.evaluate(key, self._runtime.clock.now_ms()), key)

    # ------------------------------------------------------------ the admin API's operations

    async def create(self, spec: ScheduleSpec, paused: bool, force: bool) -> Outcome:
        return typing.cast(
            Outcome, await self._runtime.write(self.steps.upsert(spec, paused, self._runtime.clock.now_ms(), force))
        )

    async def delete(self, schedule_id: str) -> Outcome:
        return typing.cast(Outcome, await self._runtime.write(self.steps.delete(schedule_id)))

    async def control(self, schedule_id: str, action: str) -> Outcome:
        now = self._runtime.clock.now_ms()
        op = {"pause": self.steps.pause, "resume": self.steps.resume, "trigger": self.steps.trigger}[action](schedule_id, now)
        outcome: Outcome = await self._runtime.write(op)
        self._watch(schedule_key(schedule_id), outcome.watch)
        return outcome

    async def backfill(self, schedule_id: str, from_ms: int, to_ms: int, overlap: str) -> Outcome:
        op = self.steps.backfill(schedule_id, from_ms, to_ms, overlap, self._runtime.clock.now_ms())
        outcome: Outcome = await self._runtime.write(op)
        self._watch(schedule_key(schedule_id), outcome.watch)
        return outcome

    async def get(self, schedule_id: str) -> tuple[ScheduleRecord, dict[str, InvocationRecord | None]] | None:
        """A schedule and the invocations of its latest fires, as one read sees them."""

        def read(txn: typing.Any) -> tuple[ScheduleRecord, dict[str, InvocationRecord | None]] | None:
            raw = txn.get_schedule(schedule_key(schedule_id))
            if raw is None:
                return None
            record = ScheduleRecord.from_stored(raw)
            shown = [fire["invocation_id"] for fire in record.last_fires] + record.running
            return record, {invocation_id: txn.get_invocation(invocation_id) for invocation_id in shown}

        return typing.cast(typing.Any, await self._runtime.store.read(read))

    async def list(self) -> list[tuple[ScheduleRecord, dict[str, InvocationRecord | None]]]:
        """Every schedule, by id, with the invocation of its latest fire."""

        def read(txn: typing.Any) -> list[tuple[ScheduleRecord, dict[str, InvocationRecord | None]]]:
            found = []
            for raw in txn.schedules():
                record = ScheduleRecord.from_stored(raw)
                latest = record.last_fires[-1:]
                found.append((record, {fire["invocation_id"]: txn.get_invocation(fire["invocation_id"]) for fire in latest}))
            return sorted(found, key=lambda item: item[0].spec.id)

        return typing.cast(typing.Any, await self._runtime.store.read(read))
