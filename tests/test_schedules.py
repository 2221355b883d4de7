"""Schedules on a time-skipping clock (pytest-trio's autojump_clock): ticks, overlap policies with a
handler slower than the interval, pause/resume/trigger/backfill, the catch-up window across a
restart, daylight-saving changes, and schedules declared in code across restarts.

The runtime is real (LMDB files, the timer actor, the writer); only time is virtual. Virtual time
leaps while a write is in a worker thread, so a step may land later than its tick: the tests assert
what must hold whatever the timing (every tick handled once, fired or skipped; runs that must not
overlap do not), and wait on events the handlers set, never on virtual sleeps.
"""

from __future__ import annotations

import datetime
import typing
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

import durio as restate
from durio.actors.runtime import Runtime, RuntimeConfig, open_runtime
from durio.schedules.requests import parse_create
from durio.schedules.specs import ScheduleSpec
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


@dataclass
class Lab:
    """What the handlers saw, and events that fire when enough has happened."""

    runtime: Runtime | None = None
    runs: list[Run] = field(default_factory=list)
    waiters: list[tuple[typing.Callable[[], bool], trio.Event]] = field(default_factory=list)

    def now_ms(self) -> int:
        assert self.runtime is not None
        return self.runtime.clock.now_ms()

    def changed(self) -> None:
        for predicate, event in self.waiters:
            if predicate():
                event.set()

    async def wait_for(self, predicate: typing.Callable[[], bool]) -> None:
        event = trio.Event()
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
    run = Run(tick, ctx.request().id, lab.now_ms())
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
    """Virtual time that leaps only after 0.25 s of real idleness: not while a write is in its thread.

    autojump_clock leaps at once whenever every task waits, a write's thread included, so a tick's
    evaluation can land after the slow handler's sleep has ended, and which run a cancel reaches, or
    when a buffered tick fires, becomes a matter of luck. The overlap tests assert those, so they
    wait for writes."""
    return trio.testing.MockClock(autojump_threshold=0.25)


@pytest.fixture(autouse=True)
def fresh_lab() -> typing.Iterator[None]:
    lab.runs.clear()
    lab.waiters.clear()
    yield
    lab.runtime = None


def config(clock_start: datetime.datetime | None = None) -> RuntimeConfig:
    # Nothing suspends (a run's start is recorded once) and nothing is purged (the clock leaps days).
    return RuntimeConfig(suspend_after_s=None, purge_completed=False, sync=False,
                         clock_start_s=None if clock_start is None else clock_start.timestamp())


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
    """(fired ticks, skipped ticks) from storage: the fired ones by their invocations, the skipped from the record."""
    found = await runtime.schedules.get(spec.id)
    assert found is not None
    record, _ = found
    fired = []
    for invocation in await fired_invocations(runtime, spec.target.service):
        assert invocation.idempotency_key is not None and invocation.idempotency_key.startswith(f"{spec.id}@")
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


async def test_each_tick_fires_once_with_the_id_derived_from_schedule_and_tick_and_never_early(autojump_clock, tmp_path) -> None:
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


async def test_an_object_schedule_runs_on_its_fixed_key_and_a_workflow_schedule_starts_a_run_per_tick(autojump_clock, tmp_path) -> None:
    async with open_runtime(SERVICES, tmp_path / "data", config()) as runtime:
        lab.runtime = runtime
        await create(runtime, every="1m", target="Counters/main/bump")
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


async def run_overlapping(tmp_path: typing.Any, overlap: str, wanted: typing.Callable[[], bool]) -> tuple[ScheduleSpec, list[int], list[int], dict]:
    async with open_runtime(SERVICES, tmp_path / "data", config()) as runtime:
        lab.runtime = runtime
        spec = await create(runtime, every="10s", target="Lab/slow", overlap=overlap)
        await lab.wait_for(wanted)
        await runtime.write(runtime.schedules.steps.pause("s", runtime.clock.now_ms()))  # hold still while we look
        fired, skipped = await handled_ticks(runtime, spec)
        found = await runtime.schedules.get("s")
        assert found is not None
        record = found[0]
    return spec, fired, skipped, {"cursor": record.cursor_ms, "skips": record.last_skips, "record": record}


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
    at_once = max(sum(1 for run in lab.runs if run.started_ms <= moment.started_ms and (run.ended_ms is None or run.ended_ms > moment.started_ms))
                  for moment in lab.runs)
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
