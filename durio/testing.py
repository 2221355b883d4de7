"""durio.testing: prove a handler correct while the runtime crashes at every step.

`crash_at_every_step` first runs your scenario once and counts every point
where durio could crash (before and after each write becomes durable, around
each `run` side effect, each call, timer, state write and completion). Then,
for every point and every occurrence of it, it runs the scenario on fresh
files with a crash injected there, restarts durio on the same files, runs the
scenario again to completion, and calls your `check`. A handler that is not
idempotent — a side effect outside `ctx.run`, a payment keyed by a fresh
random id — fails some check.

    from durio.testing import TestClient, crash_at_every_step

    async def test_checkout_survives_every_crash(tmp_path, autojump_clock):
        charges.clear()

        async def scenario(client: TestClient):
            return await client.call("Checkout", "pay", {"order": "o-1", "amount": 10})

        def check(result):
            assert result == "paid"
            assert charges == {"o-1": 10}   # charged once, whatever crashed when

        report = await crash_at_every_step([checkout], scenario, check, data_dir=tmp_path, reset=charges.clear)
        assert report.crash_points > 10

It runs on the test's event loop, Trio or asyncio (AnyIO's pytest plugin, or pytest-trio). Durable
timers of days take no time under a clock that jumps to the next deadline whenever every task waits:
on Trio `trio.testing.MockClock(autojump_threshold=0)` (pytest-trio's `autojump_clock`; with AnyIO's
plugin, `anyio_backend = ("trio", {"clock": MockClock(autojump_threshold=0)})`), on asyncio this
module's `VirtualTimeLoop` (`anyio_backend = ("asyncio", {"loop_factory": VirtualTimeLoop})`).

It is also a pytest plugin: installing durio gives every test a `crash_matrix`
fixture, `crash_at_every_step` bound to the test's `tmp_path`. The crash is
simulated inside the test process, so durio runs with fsync off here: what was
written is in the page cache and survives, as it would survive a `kill -9`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import json
import math
import os
import selectors
import time
import typing
from dataclasses import dataclass, field

from durio.actors.faults import POINTS, FaultPlan, InjectedCrash
from durio.actors.runtime import Runtime, RuntimeConfig, open_runtime
from durio.actors.transitions import CompleteSignalOutcome
from durio.journal.entries import Completion, Failure, Run, Target
from durio.kinds import HandlerKind
from durio.sdk.definitions import ServiceDefinition
from durio.sdk.errors import TerminalError
from durio.storage.lmdb_store import LmdbStore

__all__ = ["TestClient", "Crash", "CrashReport", "crash_at_every_step", "POINTS", "VirtualTimeLoop"]

T = typing.TypeVar("T")


class TestClient:
    """Invokes handlers through an in-process runtime.

    Calls and sends get idempotency keys numbered in the order the scenario
    makes them, so running the same scenario again after a crash reaches the
    same invocations instead of starting new ones.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._requests = 0

    def _next_key(self, idempotency_key: str | None) -> str:
        self._requests += 1
        return idempotency_key or f"durio-testing-{self._requests}"

    def _prepare(
        self, service: str, handler: str, body: typing.Any, key: str | None, idempotency_key: str | None, delay_ms: int = 0
    ) -> typing.Any:
        target = Target(service, handler, key)
        definition = self.runtime.registry.handler_for(target)
        if definition is None:
            raise LookupError(f"no handler {target}")
        payload = b"" if body is None else json.dumps(body).encode()
        key_for_request = None if definition.kind == HandlerKind.WORKFLOW else self._next_key(idempotency_key)
        return self.runtime.new_invocation(target, definition, payload, [], key_for_request, delay_ms)

    async def call(
        self, service: str, handler: str, body: typing.Any = None, *, key: str | None = None, idempotency_key: str | None = None
    ) -> typing.Any:
        """The handler's JSON result; a terminal failure raises TerminalError."""
        record, input_entry = self._prepare(service, handler, body, key, idempotency_key)
        _, result = await self.runtime.call(record, input_entry)
        return _decode(result)

    async def send(
        self,
        service: str,
        handler: str,
        body: typing.Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        delay_ms: int = 0,
    ) -> str:
        """Start an invocation without waiting; returns its id."""
        record, input_entry = self._prepare(service, handler, body, key, idempotency_key, delay_ms)
        created, _ = await self.runtime.send(record, input_entry)
        return created.id

    async def attach(self, invocation_id: str) -> typing.Any:
        result = await self.runtime.attach(invocation_id)
        if result is None:
            raise LookupError(f"no invocation {invocation_id}")
        return _decode(result)

    async def resolve_awakeable(self, awakeable_id: str, value: typing.Any) -> bool:
        """Complete an awakeable; False when it was already completed (by an earlier run)."""
        outcome = await self.runtime.write(self.runtime.transitions.complete_awakeable(awakeable_id, json.dumps(value).encode()))
        if outcome == CompleteSignalOutcome.NOT_FOUND:
            raise LookupError(f"no invocation for awakeable {awakeable_id}")
        return outcome == CompleteSignalOutcome.DONE

    async def cancel(self, invocation_id: str) -> None:
        """Cancel an invocation as the admin API does: it unwinds, running its compensations."""
        transitions = self.runtime.transitions
        await self.runtime.write(transitions.cancel(invocation_id, self.runtime.clock.now_ms()))

    async def state(self, service: str, key: str) -> dict[str, typing.Any]:
        raw = await self.runtime.store.read(lambda txn: txn.state_of(service, key))
        return {name: json.loads(value) if value else None for name, value in raw.items()}


def _decode(result: bytes | Failure) -> typing.Any:
    if isinstance(result, Failure):
        raise TerminalError(result.message, result.code)
    return json.loads(result) if result else None


@dataclass(frozen=True)
class Crash:
    """Where the runtime crashed, and which `run` steps were durable at that moment.

    A step in `durable_steps` must never run again; any other step that ran
    before the crash may run once more after it (its result was not journaled).
    """

    point: str
    occurrence: int
    durable_steps: frozenset[tuple[str, str]]  # (invocation id, run step name)


def _durable_steps(folder: str) -> frozenset[tuple[str, str]]:
    store = LmdbStore(folder)
    try:

        def scan(txn: typing.Any) -> set[tuple[str, str]]:
            found = set()
            for record in txn.iter_invocations():
                journal = txn.journal(record.id)
                runs = {entry.completion_id: entry.name for entry in journal if isinstance(entry, Run)}
                found |= {
                    (record.id, runs[n.completion_id]) for n in journal if isinstance(n, Completion) and n.completion_id in runs
                }
            return found

        return frozenset(store.read(scan))
    finally:
        store.close()


@dataclass
class CrashReport:
    """What a crash matrix exercised."""

    points: dict[str, int]  # how often a clean run reaches each point
    runs: int = 0  # crash-and-recover runs performed
    crashed: collections.Counter[str] = field(default_factory=collections.Counter)  # crashes that happened, per point

    @property
    def crash_points(self) -> int:
        return sum(self.crashed.values())


async def crash_at_every_step(
    services: typing.Sequence[ServiceDefinition],
    scenario: typing.Callable[[TestClient], typing.Awaitable[T]],
    check: typing.Callable[..., typing.Any] | None = None,
    *,
    data_dir: str | os.PathLike[str],
    reset: typing.Callable[[], typing.Any] | None = None,
    points: typing.Iterable[str] = POINTS,
    max_occurrences: int | None = None,
    config: RuntimeConfig | None = None,
) -> CrashReport:
    """Crash at every occurrence of every point, recover, and check the outcome each time.

    `check(result)` — or `check(result, crash)`, where `crash` is a `Crash`
    (None for the clean run) — may be async.
    """
    # Under autojump_clock virtual time leaps to the next timer whenever every task waits (even on
    # a storage thread), so completed invocations are kept: idempotency keys must outlive the scenario.
    base = config or RuntimeConfig(sync=False, purge_completed=False)
    root = os.fspath(data_dir)
    wants_crash = check is not None and len(inspect.signature(check).parameters) >= 2

    async def run_check(result: typing.Any, crash: Crash | None) -> None:
        if check is not None:
            await _maybe_await(check(result, crash) if wants_crash else check(result))

    if reset is not None:
        reset()
    counting = FaultPlan()
    result = await _run(services, scenario, os.path.join(root, "clean"), _with_faults(base, counting))
    await run_check(result, None)
    report = CrashReport(points=dict(counting.counts))

    for point in points:
        occurrences = counting.counts.get(point, 0)
        if max_occurrences is not None:
            occurrences = min(occurrences, max_occurrences)
        for occurrence in range(1, occurrences + 1):
            if reset is not None:
                reset()
            folder = os.path.join(root, f"{point}-{occurrence}")
            plan = FaultPlan((point, occurrence))
            try:
                await _run(services, scenario, folder, _with_faults(base, plan))
            except InjectedCrash:
                pass
            report.runs += 1
            crash = None
            if plan.crashed:
                report.crashed[point] += 1
                crash = Crash(point, occurrence, _durable_steps(folder))
            result = await _run(services, scenario, folder, base)
            try:
                await run_check(result, crash)
            except AssertionError as exc:
                raise AssertionError(f"after a crash at the {occurrence}th '{point}': {exc}") from exc
    return report


def _with_faults(config: RuntimeConfig, plan: FaultPlan) -> RuntimeConfig:
    return RuntimeConfig(**{**config.__dict__, "faults": plan})


async def _run(
    services: typing.Sequence[ServiceDefinition],
    scenario: typing.Callable[[TestClient], typing.Awaitable[T]],
    folder: str,
    config: RuntimeConfig,
) -> T:
    try:
        async with open_runtime(services, folder, config) as runtime:
            return await scenario(TestClient(runtime))
    except BaseExceptionGroup as group:
        crash = _find_crash(group)
        if crash is not None:
            raise crash from None
        raise


def _find_crash(error: BaseException) -> InjectedCrash | None:
    if isinstance(error, InjectedCrash):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _find_crash(inner)
            if found is not None:
                return found
    return None


async def _maybe_await(value: typing.Any) -> None:
    if hasattr(value, "__await__"):
        await value


# ---------------------------------------------------------------- virtual time on asyncio


class _JumpingSelector(selectors.BaseSelector):
    """A selector that, instead of sleeping until the next timer, moves its loop's clock to it."""

    def __init__(self, loop: "VirtualTimeLoop", threshold: float) -> None:
        self._loop = loop
        self._threshold = threshold
        self._real = selectors.DefaultSelector()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer pending: only I/O (a worker thread finishing, a socket) can wake the loop
            return self._real.select(None)
        due = self._loop.time() + timeout  # the next timer, which the jump lands on, not past
        if self._threshold > 0:  # wait that long in real time first: a worker thread may finish meanwhile
            ready = self._real.select(min(timeout, self._threshold))
            if ready:
                return ready
        self._loop.jump(max(0.0, due - self._loop.time()))
        return []

    def register(self, fileobj: typing.Any, events: int, data: typing.Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: typing.Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: typing.Any, events: int, data: typing.Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> typing.Mapping[typing.Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """asyncio's loop with Trio's autojump clock: when every task waits and a timer is pending, time jumps to it.

    As Trio's MockClock (rate 0), time stands still but for the jumps, so durable timers (durio reads
    time from the loop) fire at once and in order, at exactly their deadlines, however long the work
    between them takes in real time; I/O goes on as it comes. The hazard is Trio's too:
    a jump can happen while a worker thread (an LMDB write) runs, since the loop cannot see threads;
    `autojump_threshold` (as Trio's MockClock's) makes it wait that long in real time before a jump.
    A loop factory with a threshold: `functools.partial(VirtualTimeLoop, autojump_threshold=0.05)`.
    """

    def __init__(self, autojump_threshold: float = 0.0) -> None:
        self._now = time.monotonic()
        super().__init__(selector=_JumpingSelector(self, autojump_threshold))

    def time(self) -> float:
        return self._now

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: typing.Callable[..., object],
        *args: typing.Any,
        context: typing.Any = None,
    ) -> asyncio.TimerHandle:  # (typeshed ties callback to args with a TypeVarTuple)
        if when == math.inf:
            # Never due (asyncio.sleep(inf), AnyIO's sleep_forever): kept out of the timer heap, or the loop
            # would jump towards it a day at a time (asyncio's longest wait) whenever it is idle.
            return asyncio.TimerHandle(when, callback, args, self, context)
        return super().call_at(when, callback, *args, context=context)

    def jump(self, seconds: float) -> None:
        self._now += seconds


# ---------------------------------------------------------------- the pytest plugin

with contextlib.suppress(ImportError):
    import pytest

    @pytest.fixture
    def crash_matrix(tmp_path: typing.Any) -> typing.Callable[..., typing.Awaitable[CrashReport]]:
        """`crash_at_every_step` with `data_dir` set to the test's tmp_path."""
        return functools.partial(crash_at_every_step, data_dir=tmp_path)
