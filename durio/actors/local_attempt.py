"""One attempt of an in-process handler: the I/O of durio.sdk.attempt's AttemptHost for the invocation actor.

A new command is stamped and written to storage (its fault points hit around
it); a step's result becomes a Completion notification the actor appends and
stores; a failing step, a diverging replay or a failed write ends the attempt
with an AttemptFailure that durio.actors.retry reads. A wait that only input
can satisfy suspends the invocation after `suspend_after` seconds of nothing.
"""

from __future__ import annotations

import typing

import anyio

from durio.actors.ports import ActorHost, Op
from durio.actors.retry import AttemptFailure
from durio.journal import entries as e
from durio.journal.machine import InvocationMachine, JournalMismatch
from durio.sdk.attempt import AttemptHost, Failed, Finished, Step, Wakeup
from durio.sdk.definitions import Handler
from durio.sdk.errors import SuspendedException
from durio.sdk.invoke import NOT_DECODED
from durio.storage.records import InvocationRecord
from durio.storage.writer import Ticket


class AttemptOwner(typing.Protocol):
    """The invocation actor, as its local attempt uses it (durio.actors.invocation)."""

    runtime: ActorHost
    id: str
    record: InvocationRecord
    state: dict[str, bytes]
    awaiting: list[int]
    attempt_headers: dict[str, str] | None

    def now_ms(self) -> int: ...
    def submit(self, op: Op, on_commit: typing.Callable[[typing.Any], None] | None = None) -> Ticket: ...
    def append_notification(self, notification: e.Notification) -> None: ...


class LocalAttempt(AttemptHost):
    """An InvocationHost whose journal is the invocation actor's, in storage."""

    def __init__(
        self, actor: AttemptOwner, handler: Handler, machine: InvocationMachine, wakeup: Wakeup, suspend_after: float | None
    ) -> None:
        super().__init__(handler, machine, wakeup)
        self._actor = actor
        self._suspend_after = suspend_after
        self.failure: AttemptFailure | None = None  # the first reason this attempt failed outside the handler's code

    async def run(self, decoded: typing.Any = NOT_DECODED) -> bytes | e.Failure | AttemptFailure | SuspendedException:
        """Run the handler once over the journal: its result, why it failed, or its suspension."""
        end = await self.run_handler(decoded)
        if self.failure is not None:
            return self.failure  # a step failed, the journal diverged, or a write failed
        if isinstance(end, Finished):
            return end.result
        if isinstance(end, Failed):
            return AttemptFailure(end.error)
        if isinstance(end, SuspendedException):
            return end
        return AttemptFailure(RuntimeError("the attempt was aborted"))

    def fail(self, failure: AttemptFailure) -> None:
        """End the attempt with `failure` (the first one counts)."""
        if self.failure is None:
            self.failure = failure
        self.cancel_attempt()

    # ------------------------------------------------------------ InvocationHost

    @property
    def record(self) -> InvocationRecord:
        return self._actor.record

    @property
    def state(self) -> dict[str, bytes]:
        return self._actor.state

    @property
    def attempt_headers(self) -> dict[str, str] | None:
        return self._actor.attempt_headers

    @property
    def partial_state(self) -> bool:
        return False  # the state view holds the whole state: ctx.get never asks for a key

    def now_ms(self) -> int:
        return self._actor.runtime.clock.now_ms()

    def due_ms(self, delay_ms: int) -> int:
        return self._actor.runtime.clock.due_ms(delay_ms)

    def kind_of(self, target: e.Target) -> str | None:
        return self._actor.runtime.registry.kind_of(target)

    # ------------------------------------------------------------ the attempt's I/O (AttemptHost)

    def _command_recorded(self, entry: e.Entry, new: bool) -> None:
        if not new:
            return
        actor = self._actor
        runtime = actor.runtime
        entry.ts = actor.now_ms()
        index = len(self.machine.entries) - 1
        if runtime.tracing is not None and isinstance(entry, (e.Call, e.OneWayCall)):
            runtime.tracing.tag_outgoing(actor, entry)
        runtime.stats.journal_appends += 1
        faults = runtime.faults
        points = _fault_points_of(entry) if faults is not None else None
        if points is not None:
            faults.hit(points[0])
        actor.submit(
            runtime.transitions.append(actor.id, index, entry, entry.ts),
            on_commit=(lambda _: faults.hit(points[1])) if points is not None else None,
        )

    def _journal_diverged(self, mismatch: JournalMismatch) -> None:
        self.fail(AttemptFailure(mismatch))

    def _step_completed(self, entry: e.Run, result: bytes | e.Failure) -> None:
        self._actor.append_notification(e.Completion(completion_id=entry.completion_id, result=result))

    def _step_failed(self, step: Step, error: BaseException) -> None:
        self.fail(AttemptFailure(error, step.entry, step.options))

    def _callee_of(self, call: e.Call) -> str | None:
        return call.callee_id  # durio assigned it when the call was recorded

    async def _await_input(self, wakeup: anyio.Event) -> bool:
        if self._suspend_after is None:
            await wakeup.wait()
            return False
        with anyio.move_on_after(self._suspend_after):
            await wakeup.wait()
        return not wakeup.is_set()

    def _suspend(self, handles: typing.Collection[int], pending: tuple[int, ...]) -> None:
        self._actor.awaiting = list(handles)

    def _fault(self, point: str) -> None:
        faults = self._actor.runtime.faults
        if faults is not None:
            faults.hit(point)


def _fault_points_of(entry: e.Entry) -> tuple[str, str] | None:
    """The fault-injection points before and after a new command becomes durable, if it has any."""
    if isinstance(entry, (e.Call, e.OneWayCall)):
        return "call.before_create", "call.after_create"
    if isinstance(entry, (e.SetState, e.ClearState, e.ClearAllState)):
        return "state.before_write", "state.after_write"
    return None
