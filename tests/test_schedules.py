"""Schedules on a time-skipping clock (trio's MockClock, autojumping): ticks, overlap policies with a
handler slower than the interval, pause/resume/trigger/backfill, the catch-up window across a
restart, daylight-saving changes, and schedules declared in code across restarts.

The runtime is real (LMDB files, the timer actor, the writer); only time is virtual. The tests wait
on events the handlers set, never on virtual sleeps, and assert what must hold whatever the timing
(every tick handled once, fired or skipped; runs that must not overlap do not).
"""

from __future__ import annotations

import datetime
import typing
from dataclasses import dataclass, field

import pytest
import anyio
import trio.testing

import durio as restate
from durio.actors.runtime import Runtime, RuntimeConfig, open_runtime
from durio.schedules.requests import parse_create
from durio.schedules.specs import ScheduleSpec
from durio.schedules.state import ScheduleRecord, schedule_key
from durio.schedules.transitions import tick_invocation_id
from durio.storage.records import InvocationRecord

BERLIN = "Europe/Berlin"


@dataclass
class Run:
    tick: str  # the handler's input: the tick's scheduled time
    invocation_id: str
    started_ms: int
    ended_ms: int | None = None
    cancelled: bool = False
    schedule: str | None = None  # the schedule that fired it (its x-durio-schedule header)


@dataclass
class Lab:
    """What the handlers saw, and events that fire when enough has happened."""

    runtime: Runtime | None = None
    runs: list[Run] = field(default_factory=list)
    cursor_ms: int = 0  # the schedule's cursor as handled_ticks last read it
    waiters: list[tuple[typing.Callable[[], bool], anyio.Event]] = field(default_factory=list)

    def now_ms(self) -> int:
        # The clock of the runtime the test opened last: a handler that runs while a later one starts (a
        # caught-up tick) reads the earlier one's, so such tests judge timing by the invocations' records.
        assert self.runtime is not None
        return self.runtime.clock.now_ms()

    def changed(self) -> None:
        for predicate, event in self.waiters:
            if predicate():
                event.set()

    async def wait_for(self, predicate: typing.Callable[[], bool]) -> None:
        event = anyio.Event()
        self.waiters.append((predicate, event))
        self.changed()
        # No deadline here: autojump leaps to the earliest deadline whenever every task waits, a write's
        # thread included, so a far deadline of the test's own would be where a write sends the clock.
        await event.wait()

    def started(self, count: int) -> typing.Callable[[], bool]:
        return lambda: len(self.runs) >= count

    def ended(self, count: int) -> typing.Callable[[], bool]:
        return lambda: sum(run.ended_ms is not None for run in self.runs) >= count


lab = Lab()
service = restate.Service("Lab")
counters = restate.VirtualObject("Counters")
reports = restate.Workflow("Report")


@service.handler()
async def quick(ctx: restate.Context, tick: str) -> str:
    run = Run(tick, ctx.request().id, lab.now_ms(), schedule=ctx.request().headers.get("x-durio-schedule"))
    lab.runs.append(run)
    run.ended_ms = run.started_ms
    lab.changed()
    return tick


@service.handler()
async def slow(ctx: restate.Context, tick: str) -> str:
    """Takes 25 s (a durable sleep, so a cancel interrupts it)."""
    run = Run(tick, ctx.request().id, lab.now_ms())
    lab.runs.append(run)
    lab.changed()
    try:
        await ctx.sleep(datetime.timedelta(seconds=25))
    except restate.TerminalError:
        run.cancelled = True
        raise
    finally:
        run.ended_ms = lab.now_ms()
        lab.changed()
    return tick


@counters.handler()
async def bump(ctx: restate.ObjectContext, tick: str) -> int:
    count = (await ctx.get("count", type_hint=int) or 0) + 1
    ctx.set("count", count)
    lab.runs.append(Run(tick, ctx.request().id, lab.now_ms(), lab.now_ms()))
    lab.changed()
    return count


@reports.main()
async def run(ctx: restate.WorkflowContext, tick: str) -> str:
    lab.runs.append(Run(ctx.key(), ctx.request().id, lab.now_ms(), lab.now_ms()))
    lab.changed()
    return ctx.key()


SERVICES = [service, counters, reports]


@pytest.fixture
def patient_clock() -> trio.testing.MockClock:
    """Virtual time that leaps only after 50 ms of real idleness: not while a write is in its thread.

    autojump_clock leaps at once whenever every task waits, a write's thread included, so a tick's
    evaluation can land minutes after its tick (to whatever deadline came next): which run a cancel
    reaches, when a buffered tick fires, which ticks fall out of a catch-up window become a matter of
    luck. These tests assert those, so their clock waits for writes (each leap costs 50 ms)."""
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture(autouse=True)
def fresh_lab() -> typing.Iterator[None]:
    lab.runs.clear()
    lab.waiters.clear()
    yield
    lab.runtime = None


def config(clock_start: datetime.datetime | None = None) -> RuntimeConfig:
    # Nothing suspends (a run's start is recorded once) and nothing is purged (the clock leaps days).
    return RuntimeConfig(
        suspend_after_s=None,
        purge_completed=False,
        sync=False,
        clock_start_s=None if clock_start is None else clock_start.timestamp(),
    )


def spec_of(runtime: Runtime, **fields: typing.Any) -> ScheduleSpec:
    return parse_create({"id": "s", **fields}, runtime.registry).spec


async def create(runtime: Runtime, **fields: typing.Any) -> ScheduleSpec:
    request = parse_create({"id": "s", **fields}, runtime.registry)
    outcome = await runtime.schedules.create(request.spec, request.paused, request.force)
    assert outcome.status == "created"
    return request.spec


async def fired_invocations(runtime: Runtime, service_name: str) -> list[InvocationRecord]:
    def scan(txn: typing.Any) -> list[InvocationRecord]:
        return [record for record in txn.iter_invocations() if record.target.service == service_name]

    return sorted(await runtime.store.read(scan), key=lambda record: record.created_ms)


def tick_ms(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)


async def handled_ticks(runtime: Runtime, spec: ScheduleSpec) -> tuple[list[int], list[int]]:
    """(fired ticks, skipped ticks), as one read of storage sees them: the fired ones by their invocations, the
    skipped ones from the schedule's record. Stores the record's cursor (every tick before it was handled) in
    `lab.cursor_ms`."""

    def read(txn: typing.Any) -> tuple[list[InvocationRecord], ScheduleRecord]:
        invocations = [record for record in txn.iter_invocations() if record.target.service == spec.target.service]
        return invocations, ScheduleRecord.from_stored(txn.get_schedule(schedule_key(spec.id)))

    invocations, record = await runtime.store.read(read)
    lab.cursor_ms = record.cursor_ms
    fired = []
    for invocation in sorted(invocations, key=lambda invocation: invocation.created_ms):
        assert invocation.idempotency_key is not None and invocation.idempotency_key.startswith(f"{spec.id}@")
        if invocation.idempotency_key.startswith(f"{spec.id}@trigger@"):
            continue  # fired by a trigger, not a tick of the spec
        tick = tick_ms(invocation.idempotency_key.split("@", 1)[1].replace("Z", "+00:00"))
        assert invocation.id == tick_invocation_id(spec, tick), "a tick's invocation id is derived from (schedule, tick)"
        assert invocation.created_ms >= tick, "fired before its tick"
        fired.append(tick)
    skipped = []
    for skip in record.last_skips:
        skipped.extend(spec.ticks(skip["tick"] - 1, skip.get("until", skip["tick"]), 10_000))
    return fired, skipped


def assert_each_tick_handled_once(spec: ScheduleSpec, fired: list[int], skipped: list[int], first: int, last: int) -> None:
    every_tick = spec.ticks(first - 1, last, 10_000)
    assert sorted(fired + skipped) == every_tick, "every tick is fired or skipped, exactly once"


def assert_never_overlapping(runs: list[Run]) -> None:
    for earlier, later in zip(runs, runs[1:]):
        assert earlier.ended_ms is not None and later.started_ms >= earlier.ended_ms, f"{later} started while {earlier} ran"


# ------------------------------------------------------------------ ticks


async def test_each_tick_fires_once_with_the_id_derived_from_schedule_and_tick_and_never_early(patient_clock, tmp_path) -> None:
    async with open_runtime(SERVICES, tmp_path / "data", config()) as runtime:
        lab.runtime = runtime
        spec = await create(runtime, every="10s", target="Lab/quick")
        await lab.wait_for(lab.started(5))
        fired, skipped = await handled_ticks(runtime, spec)
    assert len(fired) >= 5 and not skipped
    assert fired == spec.ticks(fired[0] - 1, fired[-1], 100), "consecutive ticks, none missing, none twice"
    for run, tick in zip(lab.runs, fired):
        assert tick_ms(run.tick) == tick, "the handler's input is its tick's scheduled time"
        assert run.invocation_id == tick_invocation_id(spec, tick)
        assert run.started_ms >= tick


async def test_an_object_schedule_runs_on_its_fixed_key_and_a_workflow_schedule_starts_a_run_per_tick(
    patient_clock, tmp_path
) -> None:
    async with open_runtime(SERVICES, tmp_path / "data", config()) as runtime:
        lab.runtime = runtime
        await create(runtime, every="1m", target="Counters/main/bump", overlap="allow_all", catchup_window="1d")
        request = parse_create({"id": "report", "every": "5m", "target": "Report/run"}, runtime.registry)
        await runtime.schedules.create(request.spec, False, False)
        await lab.wait_for(lambda: sum(run.tick.startswith("report@") for run in lab.runs) >= 3)

        def read(txn: typing.Any) -> tuple[dict[str, bytes], list[InvocationRecord]]:
            return txn.state_of("Counters", "main"), [record for record in txn.iter_invocations() if record.is_completed]

        state, completed = await runtime.store.read(read)
    bumps = [record for record in completed if record.target.service == "Counters"]
    assert len(bumps) >= 5 and all(record.target.key == "main" for record in bumps)
    assert state["count"] == str(len(bumps)).encode(), "each tick's exclusive run counted once on the fixed key"
    workflows = [record for record in completed if record.target.service == "Report"]
    assert len(workflows) >= 2
    for workflow in workflows:
        key = typing.cast(str, workflow.target.key)
        assert key.startswith("report@"), "a workflow run per tick, keyed by the schedule and the tick"
        assert workflow.id == tick_invocation_id(request.spec, tick_ms(key.split("@", 1)[1].replace("Z", "+00:00")))
    assert {w.target.key for w in workflows} <= {run.tick for run in lab.runs}


# ------------------------------------------------------------------ overlap: a handler (25 s) slower than the interval (10 s)


async def run_overlapping(
    tmp_path: typing.Any, overlap: str, wanted: typing.Callable[[], bool]
) -> tuple[ScheduleSpec, list[int], list[int], dict]:
    async with open_runtime(SERVICES, tmp_path / "data", config()) as runtime:
        lab.runtime = runtime
        spec = await create(runtime, every="10s", target="Lab/slow", overlap=overlap)
        await lab.wait_for(wanted)
        await runtime.write(runtime.schedules.steps.pause("s", runtime.clock.now_ms()))  # hold still while we look
        fired, skipped = await handled_ticks(runtime, spec)
        found = await runtime.schedules.get("s")
        assert found is not None
        record = found[0]
    return spec, fired, skipped, {"cursor": lab.cursor_ms, "skips": record.last_skips, "record": record}


async def test_overlap_skip_never_runs_two_at_once_and_skips_the_ticks_that_came_meanwhile(patient_clock, tmp_path) -> None:
    spec, fired, skipped, seen = await run_overlapping(tmp_path, "skip", lab.ended(4))
    finished = [run for run in lab.runs if run.ended_ms is not None]
    assert_never_overlapping(finished)
    assert len(skipped) >= 6, "two or more ticks come during each 25 s run"
    assert all(skip["reason"].startswith("overlap:") for skip in seen["skips"])
    assert_each_tick_handled_once(spec, fired, skipped, fired[0], seen["cursor"])


async def test_overlap_buffer_one_keeps_one_tick_and_fires_it_when_the_running_one_ends(patient_clock, tmp_path) -> None:
    spec, fired, skipped, seen = await run_overlapping(tmp_path, "buffer_one", lab.ended(4))
    finished = [run for run in lab.runs if run.ended_ms is not None]
    assert_never_overlapping(finished)
    late = [run for run in lab.runs[1:] if run.started_ms - tick_ms(run.tick) >= 5_000]
    assert late, "a buffered tick fires late, once the run before it ended"
    for earlier, later in zip(finished, finished[1:]):
        assert later.started_ms - typing.cast(int, earlier.ended_ms) < 1000, "the buffered tick fires when the run before it ends"
    reasons = [skip["reason"] for skip in seen["skips"]]
    assert any("already buffered" in reason for reason in reasons), "a third tick while one runs and one waits is skipped"
    assert all("already buffered" in reason or reason == "paused while buffered" for reason in reasons)
    assert_each_tick_handled_once(spec, fired, skipped, fired[0], seen["cursor"])


async def test_overlap_allow_all_fires_every_tick_while_others_run(patient_clock, tmp_path) -> None:
    spec, fired, skipped, seen = await run_overlapping(tmp_path, "allow_all", lab.started(6))
    assert not skipped
    assert_each_tick_handled_once(spec, fired, skipped, fired[0], seen["cursor"])
    at_once = max(
        sum(
            1
            for run in lab.runs
            if run.started_ms <= moment.started_ms and (run.ended_ms is None or run.ended_ms > moment.started_ms)
        )
        for moment in lab.runs
    )
    assert at_once >= 2, "runs overlap"


async def test_overlap_cancel_other_cancels_the_running_one_and_fires_when_it_has_ended(patient_clock, tmp_path) -> None:
    spec, fired, skipped, seen = await run_overlapping(tmp_path, "cancel_other", lab.started(4))
    cancelled = [run for run in lab.runs if run.cancelled]
    assert len(cancelled) >= 3, f"each run is cancelled by the next tick: {lab.runs}"
    for earlier, later in zip(lab.runs, lab.runs[1:]):
        assert earlier.cancelled and earlier.ended_ms is not None and later.started_ms >= earlier.ended_ms
        assert earlier.ended_ms - earlier.started_ms <= 10_000, "cancelled at the next tick"
        assert later.started_ms - earlier.ended_ms < 1000, "the next run fires once the cancelled one has ended"
    assert_each_tick_handled_once(spec, fired, skipped, fired[0], seen["cursor"])


# ------------------------------------------------------------------ operators: pause, resume, trigger, backfill


async def test_pause_stops_ticks_resume_skips_what_passed_trigger_fires_now_and_backfill_fires_the_skipped_ones(
    patient_clock, tmp_path
) -> None:
    async with open_runtime(SERVICES, tmp_path / "data", config()) as runtime:
        lab.runtime = runtime
        spec = await create(runtime, every="10s", target="Lab/quick", overlap="allow_all")
        await lab.wait_for(lab.started(2))
        paused = await runtime.schedules.control("s", "pause")
        assert paused.status == "paused" and paused.record is not None and paused.record.due_ms is None
        assert (await runtime.schedules.control("s", "pause")).status == "unchanged"
        before = len(lab.runs)
        paused_at = runtime.clock.now_ms()
        await anyio.sleep(60)  # nothing may fire meanwhile: there is no timer to wait for
        assert len(lab.runs) == before, "a paused schedule fires nothing"

        resumed = await runtime.schedules.control("s", "resume")
        assert resumed.status == "resumed" and resumed.record is not None
        skip = resumed.record.last_skips[-1]
        missed = spec.ticks(skip["tick"] - 1, skip["until"], 100)
        assert skip["reason"] == "paused" and skip["count"] == len(missed), (
            "the ticks of the paused minute are skipped, not caught up"
        )
        assert len(missed) in (6, 7) and missed[0] > paused_at - 10_000 and missed[-1] <= runtime.clock.now_ms()
        await lab.wait_for(lab.started(before + 1))
        assert tick_ms(lab.runs[before].tick) > missed[-1], "after resume, the next tick fires, not a missed one"

        triggered = await runtime.schedules.control("s", "trigger")
        [fate] = triggered.ticks
        assert fate["outcome"] == "fired" and fate["invocation_id"] == tick_invocation_id(spec, fate["tick"], "trigger")
        await lab.wait_for(lambda: any(run.invocation_id == fate["invocation_id"] for run in lab.runs))

        filled = await runtime.write(
            runtime.schedules.steps.backfill("s", missed[0], missed[-1], "allow_all", runtime.clock.now_ms())
        )
        assert [t["outcome"] for t in filled.ticks] == ["fired"] * len(missed)
        assert [t["invocation_id"] for t in filled.ticks] == [tick_invocation_id(spec, tick) for tick in missed]
        again = await runtime.write(
            runtime.schedules.steps.backfill("s", missed[0], missed[-1], "allow_all", runtime.clock.now_ms())
        )
        assert [t["outcome"] for t in again.ticks] == ["already_fired"] * len(missed), (
            "a tick fires once, backfilled twice or not"
        )
        earlier = await runtime.write(
            runtime.schedules.steps.backfill("s", lab_first_tick(), lab_first_tick(), "allow_all", runtime.clock.now_ms())
        )
        assert [t["outcome"] for t in earlier.ticks] == ["already_fired"], (
            "backfilling a tick the schedule fired meets its invocation"
        )
        await lab.wait_for(lambda: {tick_ms(run.tick) for run in lab.runs} >= set(missed))
        await runtime.schedules.control("s", "pause")  # what runs from here on was fired before this read
        fired, _ = await handled_ticks(runtime, spec)
    assert len(fired) == len(set(fired)), "no tick fired twice"
    ran = [run.invocation_id for run in lab.runs]
    assert len(ran) == len(set(ran)), "no invocation ran twice"
    assert set(ran) <= {tick_invocation_id(spec, tick) for tick in fired} | {fate["invocation_id"]}


def lab_first_tick() -> int:
    return tick_ms(lab.runs[0].tick)


# ------------------------------------------------------------------ daylight saving, on a clock that skips the days


async def fire_across(
    tmp_path: typing.Any, clock_start: datetime.datetime, day: str, wanted: dict[str, int]
) -> dict[str, list[str]]:
    """Serve from `clock_start` until each schedule fired `wanted[id]` ticks; the tick times of `day` by schedule."""
    async with open_runtime(SERVICES, tmp_path / "data", config(clock_start)) as runtime:
        lab.runtime = runtime
        # Virtual time may leap past a tick while a write is in its thread: a day's window keeps every tick.
        for schedule_id, cron in (("daily", "30 2 * * *"), ("half-hourly", "*/30 1-3 * * *")):
            await create(
                runtime, id=schedule_id, cron=cron, timezone=BERLIN, target="Lab/quick", overlap="allow_all", catchup_window="1d"
            )
        await lab.wait_for(lambda: all(sum(run.schedule == s for run in lab.runs) >= n for s, n in wanted.items()))
    by_schedule: dict[str, list[str]] = {}
    for run in sorted(lab.runs, key=lambda run: tick_ms(run.tick)):
        assert run.started_ms >= tick_ms(run.tick), "never before its tick"
        if run.tick.startswith(day):
            by_schedule.setdefault(typing.cast(str, run.schedule), []).append(run.tick)
    return by_schedule


async def test_spring_forward_a_time_in_the_skipped_hour_fires_when_the_clock_jumps(patient_clock, tmp_path) -> None:
    ticks = await fire_across(
        tmp_path, datetime.datetime(2026, 3, 28, 12, 0, tzinfo=datetime.UTC), "2026-03-29", {"daily": 2, "half-hourly": 5}
    )
    # Europe/Berlin skips 02:00-03:00 on 29 March 2026: 02:30 does not exist, so the daily job runs at 03:00, once.
    assert ticks["daily"] == ["2026-03-29T03:00:00+02:00"]
    # A job finer than an hour keeps its elapsed-time rhythm: the ticks of the missing hour do not happen.
    assert ticks["half-hourly"] == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]
    assert any(run.tick == "2026-03-30T02:30:00+02:00" for run in lab.runs), "the next day is back at 02:30"


async def test_fall_back_a_time_in_the_repeated_hour_fires_once(patient_clock, tmp_path) -> None:
    ticks = await fire_across(
        tmp_path, datetime.datetime(2026, 10, 24, 12, 0, tzinfo=datetime.UTC), "2026-10-25", {"daily": 2, "half-hourly": 9}
    )
    # Berlin repeats 02:00-03:00 on 25 October 2026: the daily 02:30 runs once, in summer time.
    assert ticks["daily"] == ["2026-10-25T02:30:00+02:00"]
    assert ticks["half-hourly"] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ], "the half-hours of the repeated hour are real half-hours apart: each fires"
    assert any(run.tick == "2026-10-26T02:30:00+01:00" for run in lab.runs)


# ------------------------------------------------------------------ ticks missed while durio was down


async def test_after_downtime_ticks_inside_the_catchup_window_fire_and_older_ones_are_recorded_skipped(
    patient_clock, tmp_path
) -> None:
    start = datetime.datetime(2026, 6, 1, 0, 0, 30, tzinfo=datetime.UTC)
    async with open_runtime(SERVICES, tmp_path / "data", config(start)) as runtime:
        lab.runtime = runtime
        # allow_all: under skip (the default) the first caught-up tick would run and the rest overlap it.
        spec = await create(runtime, every="1m", target="Lab/quick", catchup_window="5m", overlap="allow_all")
        await lab.wait_for(lab.started(2))
    last_before = tick_ms(lab.runs[-1].tick)
    restart = start + datetime.timedelta(minutes=20)
    async with open_runtime(SERVICES, tmp_path / "data", config(restart)) as runtime:
        lab.runtime = runtime
        restart_ms = int(restart.timestamp() * 1000)
        await lab.wait_for(lambda: tick_ms(lab.runs[-1].tick) > restart_ms)
        fired, skipped = await handled_ticks(runtime, spec)
        created = {
            tick_ms(i.idempotency_key.split("@", 1)[1].replace("Z", "+00:00")): i.created_ms  # type: ignore[union-attr]
            for i in await fired_invocations(runtime, "Lab")
        }
        found = await runtime.schedules.get("s")
        assert found is not None
    record = found[0]
    [skip] = record.last_skips
    assert skip["reason"] == "missed: more than 5m (the catch-up window) late"
    evaluated_at = skip["at"]  # the restart, or a little later: virtual time may leap while storage opens
    assert restart_ms <= evaluated_at < restart_ms + 60_000
    window_start = evaluated_at - 5 * 60_000
    assert skipped == spec.ticks(last_before, window_start - 1, 100), "ticks more than 5 minutes late are skipped"
    caught_up = sorted(tick for tick in fired if last_before < tick <= evaluated_at)
    assert caught_up == spec.ticks(window_start - 1, evaluated_at, 100) and len(caught_up) in (5, 6), "the rest fire at start"
    # (Fired while the second runtime started: its invocations say when, the handlers' clock is not set up yet.)
    assert all(created_ms >= restart_ms for tick, created_ms in created.items() if tick in caught_up)
    assert_each_tick_handled_once(spec, fired, skipped, fired[0], lab.cursor_ms)


# ------------------------------------------------------------------ schedules declared in code, across restarts


def ticker(**schedule: typing.Any) -> restate.Service:
    """The same service as successive versions of its code would define it: scheduled as given, or not."""
    code = restate.Service("Ticker")

    @code.handler()
    async def tick(ctx: restate.Context, at: str) -> str:
        lab.runs.append(
            Run(at, ctx.request().id, lab.now_ms(), lab.now_ms(), schedule=ctx.request().headers.get("x-durio-schedule"))
        )
        lab.changed()
        return at

    if schedule:
        restate.scheduled(**schedule)(tick)
    return code


async def schedules_by_id(runtime: Runtime) -> dict[str, typing.Any]:
    return {record.spec.id: record for record, _ in await runtime.schedules.list()}


async def test_schedules_declared_in_code_are_created_changed_and_removed_with_the_code(patient_clock, tmp_path) -> None:
    data = tmp_path / "data"
    # Each run of durio starts an hour after the one before (the virtual clock ran ahead of the real one).
    day = datetime.datetime(2026, 5, 4, 8, 0, tzinfo=datetime.UTC)
    async with open_runtime([ticker(every="10s")], data, config(day)) as runtime:
        lab.runtime = runtime
        manual = parse_create({"id": "manual", "every": "1h", "target": "Ticker/tick"}, runtime.registry)
        await runtime.schedules.create(manual.spec, False, False)
        declared = (await schedules_by_id(runtime))["Ticker.tick"]
        assert declared.spec.source == "code" and declared.spec.every_ms == 10_000
        clash = parse_create({"id": "Ticker.tick", "every": "1m", "target": "Ticker/tick"}, runtime.registry)
        assert (await runtime.schedules.create(clash.spec, False, True)).status == "declared_in_code"
        assert (await runtime.schedules.delete("Ticker.tick")).status == "declared_in_code"
        await lab.wait_for(lambda: sum(run.schedule == "Ticker.tick" for run in lab.runs) >= 2)

    async with open_runtime([ticker(every="10s")], data, config(day + datetime.timedelta(hours=1))) as runtime:
        unchanged = (await schedules_by_id(runtime))["Ticker.tick"]
        assert unchanged.updated_ms == declared.updated_ms and unchanged.fired >= 2, "the same code leaves it as it was"

    async with open_runtime([ticker(cron="*/5 * * * *")], data, config(day + datetime.timedelta(hours=2))) as runtime:
        lab.runtime = runtime
        changed = (await schedules_by_id(runtime))["Ticker.tick"]
        assert changed.spec.cron == "*/5 * * * *" and changed.spec.every_ms is None
        assert changed.fired >= unchanged.fired and changed.last_fires[:2] == unchanged.last_fires[:2], "its history stays"
        assert changed.next_tick_ms is not None and changed.next_tick_ms % 300_000 == 0, "it ticks as the new code says"
        await lab.wait_for(lambda: any(tick_ms(run.tick) > changed.updated_ms for run in lab.runs))
        assert all(
            tick_ms(run.tick) % 300_000 == 0
            for run in lab.runs
            if run.schedule == "Ticker.tick" and tick_ms(run.tick) > changed.updated_ms
        ), ([r for r in lab.runs if r.schedule == "Ticker.tick" and tick_ms(r.tick) > changed.updated_ms], changed)
        assert (await schedules_by_id(runtime))["manual"].spec.source == "api"

    async with open_runtime([ticker()], data, config(day + datetime.timedelta(hours=3))) as runtime:
        remaining = await schedules_by_id(runtime)
        timers = await runtime.store.read(lambda txn: txn.timers_from(0, 100))
    assert set(remaining) == {"manual"}, "gone from the code, gone from durio; the API's schedule stays"
    assert [timer.invocation_id for timer in timers if timer.kind == 5] == [remaining["manual"].key]


async def test_a_long_outage_is_handled_in_bounded_steps_and_its_skipped_ticks_are_one_entry_per_run(
    patient_clock, tmp_path
) -> None:
    """Every second, a day's window, overlap skip: 2 hours down is 7,200 due ticks, worked through 500 per write."""
    start = datetime.datetime(2026, 6, 1, 0, 0, 0, 500_000, tzinfo=datetime.UTC)
    async with open_runtime(SERVICES, tmp_path / "data", config(start)) as runtime:
        lab.runtime = runtime
        spec = await create(runtime, every="1s", target="Lab/slow", catchup_window="1d")
        await lab.wait_for(lab.started(1))
    restart = start + datetime.timedelta(hours=2)
    async with open_runtime(SERVICES, tmp_path / "data", config(restart)) as runtime:
        lab.runtime = runtime
        batches_before = runtime.store.writer.statistics().ops
        restart_ms = int(restart.timestamp() * 1000)
        await lab.wait_for(lambda: tick_ms(lab.runs[-1].tick) > restart_ms)
        await runtime.schedules.control("s", "pause")
        fired, skipped = await handled_ticks(runtime, spec)
        writes = runtime.store.writer.statistics().ops - batches_before
        found = await runtime.schedules.get("s")
        assert found is not None
    record = found[0]
    assert_each_tick_handled_once(spec, fired, skipped, fired[0], lab.cursor_ms)
    assert len(skipped) > 7000
    assert len(record.last_skips) < 20 and record.skipped == len(skipped), "runs of overlapping ticks are one entry each"
    assert writes >= 7000 // 500, "the outage's ticks were handled in bounded writes"
