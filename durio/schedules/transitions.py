"""A schedule's durable steps, each one writer op (see durio.actors.transitions).

The step that matters is `evaluate`: inside one transaction it handles every tick that is due
(fires it, skips it, or buffers it, as the overlap policy and the catch-up window say), moves the
cursor past it, and stores the next timer. Firing composes the runtime's own `create` op, so the
tick's invocation is created in the same transaction that records the tick as handled: no crash
can separate the two. A tick's invocation id is an idempotent invocation's id whose key is
`{schedule id}@{tick time}` (a workflow run's key is the same text), so a tick fired by a backfill
and by the schedule, or twice by anything, meets the same invocation.

Steps are idempotent against time: `evaluate` at any moment fires only ticks that are due, so a
timer that fires twice, or late, or after the schedule changed, does no harm.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import typing

from durio import ids
from durio.actors.effects import Applied, Effects
from durio.actors.transitions import Created, Transitions
from durio.journal.entries import Input, Target
from durio.schedules.specs import ScheduleSpec, format_duration_ms
from durio.schedules.state import ScheduleRecord, schedule_key
from durio.storage.records import InvocationRecord, Status, TimerKey
from durio.storage.txn import Txn

Op = typing.Callable[[Txn], Applied]

MAX_BACKFILL_TICKS = 1000  # one backfill is one transaction: a bounded one
# Ticks one evaluation handles at most: after a long outage with a long window, the rest are handled by
# the next evaluations (the timer stays due, so the timer actor fires it again at once), each a bounded write.
MAX_TICKS_PER_STEP = 500
MAX_COUNTED_MISSES = 10_000  # past this many missed cron ticks in one outage, the count says "at least"
SCHEDULE_HEADER = "x-durio-schedule"
SCHEDULED_AT_HEADER = "x-durio-scheduled-at"


class HandlerLookup(typing.Protocol):
    """What firing needs of the registry (durio.actors.registry.Registry)."""

    def handler_for(self, target: Target) -> typing.Any: ...

    def retention_ms(self, handler: typing.Any, idempotent: bool = False) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What a step did, and the fired invocations a buffered tick waits for (the scheduler watches them)."""

    status: str
    record: ScheduleRecord | None = None
    ticks: list[dict[str, typing.Any]] = dataclasses.field(default_factory=list)  # trigger and backfill: each tick's fate
    watch: list[str] = dataclasses.field(default_factory=list)


def merge_effects(into: Effects, more: Effects) -> None:
    for spec in dataclasses.fields(Effects):
        mine, theirs = getattr(into, spec.name), getattr(more, spec.name)
        if isinstance(mine, list):
            mine.extend(theirs)
        elif isinstance(mine, dict):
            mine.update(theirs)
        else:
            setattr(into, spec.name, mine + theirs)


def tick_idempotency_key(schedule_id: str, tick_ms: int, by: str) -> str:
    """The key a tick's invocation is derived from: the schedule and the tick's instant (UTC, to the millisecond)."""
    moment = datetime.datetime.fromtimestamp(tick_ms / 1000, tz=datetime.UTC).isoformat(timespec="milliseconds")
    instant = moment.replace("+00:00", "Z")
    return f"{schedule_id}@{instant}" if by != "trigger" else f"{schedule_id}@trigger@{instant}"


def tick_invocation_id(spec: ScheduleSpec, tick_ms: int, by: str = "schedule") -> str:
    """The id of the invocation a tick fires (also what a test checks fired ids against)."""
    key = tick_idempotency_key(spec.id, tick_ms, by)
    if spec.target_kind == "workflow":
        return ids.workflow_run_id(spec.target.service, key)
    return ids.idempotent_invocation_id(spec.target, key)


class ScheduleSteps:
    def __init__(self, transitions: Transitions, handlers: HandlerLookup) -> None:
        self.transitions = transitions
        self.handlers = handlers

    # ------------------------------------------------------------ records

    @staticmethod
    def load(txn: Txn, key: str) -> ScheduleRecord | None:
        raw = txn.get_schedule(key)
        return None if raw is None else ScheduleRecord.from_stored(raw)

    @staticmethod
    def _save(txn: Txn, record: ScheduleRecord, previous_timer: TimerKey | None, fx: Effects) -> None:
        timer = record.timer()
        if previous_timer is not None and previous_timer != timer:
            txn.delete_timer(previous_timer)
        if timer is not None:
            txn.put_timer(timer)  # again even if unchanged: the op that fired it deleted it
            fx.timers.append(timer)
        txn.put_schedule(record.key, record.to_stored())

    @staticmethod
    def _arm(record: ScheduleRecord) -> None:
        spec = record.spec
        if record.paused or record.next_tick_ms is None:
            record.due_ms = None
        else:
            record.due_ms = record.next_tick_ms + spec.jitter_for(record.next_tick_ms)

    def _on_schedule(self, schedule_id: str, step: typing.Callable[[Txn, ScheduleRecord, Effects], Outcome]) -> Op:
        def op(txn: Txn) -> Applied:
            fx = Effects()
            record = self.load(txn, schedule_key(schedule_id))
            if record is None:
                return Applied(Outcome("not_found"), fx)
            previous_timer = record.timer()
            outcome = step(txn, record, fx)
            if outcome.status not in ("not_found", "declared_in_code"):
                self._arm(record)
                self._save(txn, record, previous_timer, fx)
            return Applied(dataclasses.replace(outcome, record=record, watch=_watch(record)), fx)

        return op

    # ------------------------------------------------------------ creating, replacing, deleting

    def upsert(self, spec: ScheduleSpec, paused: bool, now_ms: int, force: bool = False) -> Op:
        """Create a schedule; one of the same id is 'unchanged' if its spec is the same, else a 'conflict' unless `force`."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            return Applied(self._upsert(txn, spec, paused, now_ms, force, fx), fx)

        return op

    def _upsert(self, txn: Txn, spec: ScheduleSpec, paused: bool | None, now_ms: int, force: bool, fx: Effects) -> Outcome:
        existing = self.load(txn, schedule_key(spec.id))
        if existing is None:
            record = ScheduleRecord(spec, created_ms=now_ms, updated_ms=now_ms, paused=bool(paused), cursor_ms=now_ms)
            record.next_tick_ms = spec.first_tick_after(now_ms)
            self._arm(record)
            self._save(txn, record, None, fx)
            return Outcome("created", record)
        if existing.spec.source == "code" and spec.source == "api":
            return Outcome("declared_in_code", existing)
        if existing.spec == spec:
            return Outcome("unchanged", existing)
        if not force:
            return Outcome("conflict", existing)
        previous_timer = existing.timer()
        existing.spec = spec
        existing.updated_ms = now_ms
        if paused is not None:
            existing.paused = paused
        # A changed schedule starts from now: the old spec's missed ticks are not the new one's.
        existing.cursor_ms = max(existing.cursor_ms, now_ms)
        existing.next_tick_ms = spec.first_tick_after(existing.cursor_ms)
        self._arm(existing)
        self._save(txn, existing, previous_timer, fx)
        return Outcome("replaced", existing)

    def delete(self, schedule_id: str, allow_code: bool = False) -> Op:
        """Forget a schedule and its timer; invocations it fired run on."""

        def op(txn: Txn) -> Applied:
            record = self.load(txn, schedule_key(schedule_id))
            if record is None:
                return Applied(Outcome("not_found"), Effects())
            if record.spec.source == "code" and not allow_code:
                return Applied(Outcome("declared_in_code", record), Effects())
            self._delete(txn, record)
            return Applied(Outcome("deleted", record), Effects())

        return op

    @staticmethod
    def _delete(txn: Txn, record: ScheduleRecord) -> None:
        timer = record.timer()
        if timer is not None:
            txn.delete_timer(timer)
        txn.delete_schedule(record.key)

    def sync_declared(self, specs: list[ScheduleSpec], now_ms: int, is_here: typing.Callable[[str], bool] | None = None) -> Op:
        """Make the schedules declared in code exactly `specs`: create, replace changed ones, delete vanished ones.

        `is_here`: whether a schedule's key is in a partition this process owns; the others are left to
        their owners (a worker or a cluster node syncs its own partitions' schedules as it starts).
        Returns {"created": [...], "replaced": [...], "deleted": [...], "took_over": [...]} (schedule ids)."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            summary: dict[str, list[str]] = {"created": [], "replaced": [], "deleted": [], "took_over": []}
            declared = {spec.id for spec in specs}
            for raw in txn.schedules():
                record = ScheduleRecord.from_stored(raw)
                if is_here is not None and not is_here(schedule_key(record.spec.id)):
                    continue
                if record.spec.source == "code" and record.spec.id not in declared:
                    self._delete(txn, record)
                    summary["deleted"].append(record.spec.id)
            for spec in specs:
                if is_here is not None and not is_here(schedule_key(spec.id)):
                    continue
                existing = self.load(txn, schedule_key(spec.id))
                if existing is not None and existing.spec.source == "api":
                    summary["took_over"].append(spec.id)
                outcome = self._upsert(txn, spec, None, now_ms, True, fx)
                if outcome.status in ("created", "replaced"):
                    summary[outcome.status].append(spec.id)
            return Applied(summary, fx)

        return op

    # ------------------------------------------------------------ ticks

    def evaluate(self, key: str, now_ms: int, timer: TimerKey | None = None) -> Op:
        """Handle every tick due by `now_ms`; `timer` is the stored timer that fired, if one did."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            if timer is not None:
                txn.delete_timer(timer)
            record = self.load(txn, key)
            if record is None:
                return Applied(Outcome("not_found"), fx)
            previous_timer = record.timer()
            self._advance(txn, record, now_ms, fx)
            self._arm(record)
            self._save(txn, record, previous_timer, fx)
            return Applied(Outcome("evaluated", record, watch=_watch(record)), fx)

        return op

    def _advance(self, txn: Txn, record: ScheduleRecord, now_ms: int, fx: Effects) -> None:
        self._prune_running(txn, record)
        if record.buffered is not None and not record.running:
            buffered, record.buffered = record.buffered, None
            self._fire(txn, record, buffered["tick"], buffered["by"], now_ms, fx)
        if record.paused:
            return
        spec = record.spec
        for _ in range(MAX_TICKS_PER_STEP):
            tick = record.next_tick_ms
            if tick is None or tick + spec.jitter_for(tick) > now_ms:
                break
            if now_ms - tick > spec.catchup_window_ms:
                self._skip_missed(record, tick, now_ms)
                continue
            self._handle(txn, record, tick, "schedule", spec.overlap, now_ms, fx, previous_tick=record.cursor_ms)
            record.cursor_ms = tick
            record.next_tick_ms = spec.first_tick_after(tick)

    @staticmethod
    def _skip_missed(record: ScheduleRecord, first_missed: int, now_ms: int) -> None:
        """Record as skipped every tick from `first_missed` that is later than the catch-up window allows."""
        spec = record.spec
        horizon = now_ms - spec.catchup_window_ms  # ticks before this are too late to fire
        reason = f"missed: more than {format_duration_ms(spec.catchup_window_ms)} (the catch-up window) late"
        if spec.every_ms is not None:
            count = (horizon - 1 - first_missed) // spec.every_ms + 1
            last_missed = first_missed + (count - 1) * spec.every_ms
        else:
            missed = [first_missed, *spec.ticks(first_missed, horizon - 1, MAX_COUNTED_MISSES)]
            count, last_missed = len(missed), missed[-1]
            if count > MAX_COUNTED_MISSES:
                reason += f" (at least {MAX_COUNTED_MISSES} ticks; not counted further)"
                last_missed = horizon - 1
        record.note_skip(first_missed, count, reason, now_ms, until_ms=last_missed)
        record.cursor_ms = last_missed
        record.next_tick_ms = spec.first_tick_after(last_missed)

    def _prune_running(self, txn: Txn, record: ScheduleRecord) -> None:
        still = []
        for invocation_id in record.running:
            invocation = txn.get_invocation(invocation_id)
            if invocation is not None and invocation.status != Status.COMPLETED:
                still.append(invocation_id)
        record.running = still

    def _handle(
        self,
        txn: Txn,
        record: ScheduleRecord,
        tick: int,
        by: str,
        overlap: str,
        now_ms: int,
        fx: Effects,
        previous_tick: int | None = None,
    ) -> dict[str, typing.Any]:
        """One tick, under an overlap policy: fired, skipped or buffered (its fate, for trigger and backfill).

        `previous_tick`: the spec's tick just before this one, for a skip to join the entry of a run of skips."""
        if record.running and overlap != "allow_all":
            running = record.running[-1]
            if overlap == "skip":
                record.note_skip(tick, 1, f"overlap: {running} was still running", now_ms, after_tick=previous_tick)
                return {"tick": tick, "outcome": "skipped", "reason": "overlap"}
            if overlap == "buffer_one" and record.buffered is not None:
                reason = f"overlap: {running} was still running and a tick was already buffered"
                record.note_skip(tick, 1, reason, now_ms, after_tick=previous_tick)
                return {"tick": tick, "outcome": "skipped", "reason": "overlap"}
            if overlap == "cancel_other":
                if record.buffered is None:
                    for invocation_id in record.running:
                        merge_effects(fx, self.transitions.cancel(invocation_id, now_ms)(txn).effects)
                else:
                    record.note_skip(
                        record.buffered["tick"], 1, "superseded by a later tick while the cancelled one ended", now_ms
                    )
            record.buffered = {"tick": tick, "by": by}
            return {"tick": tick, "outcome": "buffered"}
        return self._fire(txn, record, tick, by, now_ms, fx)

    def _fire(self, txn: Txn, record: ScheduleRecord, tick: int, by: str, now_ms: int, fx: Effects) -> dict[str, typing.Any]:
        spec = record.spec
        handler = self.handlers.handler_for(spec.target)
        if handler is None:
            record.note_skip(tick, 1, f"the target {spec.target_path} does not exist", now_ms)
            return {"tick": tick, "outcome": "skipped", "reason": "no target"}
        key = tick_idempotency_key(spec.id, tick, by)
        if spec.target_kind == "workflow":
            target = Target(spec.target.service, spec.target.handler, key)
            invocation_id, idempotency_key = ids.workflow_run_id(spec.target.service, key), None
        else:
            target = spec.target
            invocation_id, idempotency_key = ids.idempotent_invocation_id(target, key), key
        scheduled_at = spec.local_time(tick)
        invocation = InvocationRecord(
            id=invocation_id,
            target=target,
            handler_kind=handler.kind,
            status=Status.READY,
            created_ms=now_ms,
            modified_ms=now_ms,
            idempotency_key=idempotency_key,
            retention_ms=self.handlers.retention_ms(handler, idempotent=idempotency_key is not None),
        )
        body = spec.input if spec.input is not None else json.dumps(scheduled_at).encode()
        headers = [(SCHEDULE_HEADER, spec.id), (SCHEDULED_AT_HEADER, scheduled_at)]
        applied = self.transitions.create(invocation, Input(ts=now_ms, value=body, headers=headers))(txn)
        merge_effects(fx, applied.effects)
        created: Created = applied.value
        if not created.created:
            return {"tick": tick, "outcome": "already_fired", "invocation_id": invocation_id}
        if not created.record.is_completed:
            record.note_running(invocation_id)
        record.note_fire({"tick": tick, "by": by, "invocation_id": invocation_id, "fired_at": now_ms})
        return {"tick": tick, "outcome": "fired", "invocation_id": invocation_id}

    # ------------------------------------------------------------ operators

    def pause(self, schedule_id: str, now_ms: int) -> Op:
        def pause(txn: Txn, record: ScheduleRecord, fx: Effects) -> Outcome:
            if record.paused:
                return Outcome("unchanged")
            record.paused = True
            record.updated_ms = now_ms
            if record.buffered is not None:
                record.note_skip(record.buffered["tick"], 1, "paused while buffered", now_ms)
                record.buffered = None
            return Outcome("paused")

        return self._on_schedule(schedule_id, pause)

    def resume(self, schedule_id: str, now_ms: int) -> Op:
        """Run again from now: the ticks that passed while paused are recorded as skipped, not caught up."""

        def resume(txn: Txn, record: ScheduleRecord, fx: Effects) -> Outcome:
            if not record.paused:
                return Outcome("unchanged")
            record.paused = False
            record.updated_ms = now_ms
            spec = record.spec
            passed = spec.ticks(record.cursor_ms, now_ms, MAX_COUNTED_MISSES)
            if passed:
                record.note_skip(passed[0], len(passed), "paused", now_ms, until_ms=passed[-1])
            record.cursor_ms = max(record.cursor_ms, now_ms)
            record.next_tick_ms = spec.first_tick_after(record.cursor_ms)
            return Outcome("resumed")

        return self._on_schedule(schedule_id, resume)

    def trigger(self, schedule_id: str, now_ms: int) -> Op:
        """Fire a tick now, outside the spec, under the schedule's overlap policy (paused or not)."""

        def trigger(txn: Txn, record: ScheduleRecord, fx: Effects) -> Outcome:
            self._prune_running(txn, record)
            fate = self._handle(txn, record, now_ms, "trigger", record.spec.overlap, now_ms, fx)
            return Outcome("triggered", ticks=[fate])

        return self._on_schedule(schedule_id, trigger)

    def backfill(self, schedule_id: str, from_ms: int, to_ms: int, overlap: str, now_ms: int) -> Op:
        """Fire the spec's ticks in [from, to] that have not fired (the ones that have keep their invocation)."""

        def backfill(txn: Txn, record: ScheduleRecord, fx: Effects) -> Outcome:
            ticks = record.spec.ticks(from_ms - 1, min(to_ms, now_ms), MAX_BACKFILL_TICKS + 1)
            if len(ticks) > MAX_BACKFILL_TICKS:
                return Outcome("too_many")
            self._prune_running(txn, record)
            fates = [self._handle(txn, record, tick, "backfill", overlap, now_ms, fx) for tick in ticks]
            return Outcome("backfilled", ticks=fates)

        return self._on_schedule(schedule_id, backfill)


def _watch(record: ScheduleRecord) -> list[str]:
    """A buffered tick fires when the running invocations end: those are what the scheduler waits for."""
    return list(record.running) if record.buffered is not None and record.running else []
