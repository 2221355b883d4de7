"""The host side of one handler attempt, written once for both hosts.

An attempt runs the handler over its journal: it invokes the handler in a task
group that also holds its `run` steps, starts a step when the handler awaits
it (async on this loop, sync in a worker thread with the context variables
copied), and loops over durio.journal.progress's verdicts while the handler
waits. Two hosts subclass `AttemptHost` and supply only their I/O:

- durio.actors.local_attempt: in-process handlers; commands and step results
  go to storage, and a wait suspends after `suspend_after_s` of nothing.
- durio.protocol.endpoint.attempt: `durio.app` behind a Restate server;
  commands and step results go back as frames, and a wait suspends once the
  server closed its side of the request.

Rejected alternative: one host class that switches on where it runs. The
subclasses' hooks are the whole difference, and each stays readable on its own.
"""

from __future__ import annotations

import abc
import contextvars
import functools
import inspect
import logging
import typing
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.to_thread

from durio.backend import end_abandoned_waiter, explain_wrong_loop
from durio.journal import entries as e
from durio.journal import progress as p
from durio.journal.machine import InvocationMachine, JournalMismatch
from durio.sdk.context import context_for
from durio.sdk.definitions import Handler
from durio.sdk.errors import AttemptAborted, SuspendedException, TerminalError
from durio.sdk.host import InvocationInfo
from durio.sdk.invoke import NOT_DECODED, invoke_handler
from durio.sdk.options import RunOptions
from durio.sdk.serde import Serde

log = logging.getLogger("durio.attempt")


class Wakeup:
    """Wakes every task waiting now when something happened (a step ended, a notification became durable).

    One event per round: under asyncio a handler may wait on several futures at once (asyncio.gather
    makes a task per future), and each of them must wake on the next happening.
    """

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    def next(self) -> anyio.Event:
        """The event the next happening sets."""
        if self._event.is_set():
            self._event = anyio.Event()
        return self._event


@dataclass(slots=True)
class Step:
    """A `run` step the handler took: what it runs, how its value is written, how it is retried."""

    entry: e.Run
    action: typing.Callable[[], typing.Any]
    serde: Serde[typing.Any]
    options: RunOptions[typing.Any]


@dataclass(frozen=True, slots=True)
class Finished:
    """The handler returned (or raised TerminalError): its Output is recorded; `new` unless the journal held it."""

    result: bytes | e.Failure
    new: bool


@dataclass(frozen=True, slots=True)
class Failed:
    """The handler raised a retryable error, or its Output diverged from the journal (a JournalMismatch)."""

    error: BaseException


# How the handler's part of an attempt ended; None: it was cut short (a step failed, the host ended the attempt).
HandlerEnd = Finished | Failed | SuspendedException | AttemptAborted | None


def is_async_callable(action: typing.Callable[..., typing.Any]) -> bool:
    """Whether calling `action` gives an awaitable: a coroutine function, or an object with an async __call__."""
    target = action
    while isinstance(target, functools.partial):
        target = target.func
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))


class AttemptHost(abc.ABC):
    """One attempt of a handler over `machine`: an InvocationHost (durio.sdk.host) minus the host's I/O.

    Subclasses provide what is below the ruler "what the host does": who the invocation is, its state and clock,
    and where commands, step results, failures and suspensions go.
    """

    def __init__(self, handler: Handler, machine: InvocationMachine, wakeup: Wakeup) -> None:
        self.handler = handler
        self.machine = machine
        self._wakeup = wakeup
        self._scope = anyio.CancelScope()  # the whole attempt: cancelled to end it early
        self._runs: anyio.abc.TaskGroup | None = None  # set while the handler runs
        self._runs_in_flight = 0
        # Steps taken and not started, by completion id. A step starts when the handler awaits it, as in the official
        # SDK (one nobody awaits never runs), and not while a cancellation comes first.
        self._deferred_runs: dict[int, Step] = {}
        self._finished = anyio.Event()
        self._input_open = True  # False once nothing more can arrive from outside (see progress's input_closed)

    # ------------------------------------------------------------ the attempt

    async def run_handler(self, decoded: typing.Any = NOT_DECODED) -> HandlerEnd:
        """Run the handler until it ends; `decoded` is its argument when the caller decoded the input already."""
        context = context_for(self)
        end: HandlerEnd = None
        try:
            with self._scope:
                async with anyio.create_task_group() as runs:
                    self._runs = runs
                    try:
                        end = await self._invoke(context, decoded)
                        self._handler_ended(end)
                    finally:
                        runs.cancel_scope.cancel()  # steps the handler never awaited end with the attempt
        finally:
            self._runs = None
            self._finished.set()
            self._wakeup.set()  # a wait the handler abandoned (asyncio) wakes, and ends
        return end

    async def _invoke(self, context: typing.Any, decoded: typing.Any) -> HandlerEnd:
        try:
            output = await invoke_handler(self.handler, context, self.machine.input.value, decoded)
            return self._record_output(output)
        except TerminalError as exc:
            return self._record_output(e.Failure(exc.status_code, exc.message, exc.metadata))
        except (SuspendedException, AttemptAborted) as exc:
            return exc
        except Exception as exc:
            return Failed(explain_wrong_loop(exc))

    def _record_output(self, result: bytes | e.Failure) -> Finished | Failed:
        try:
            _, new = self.machine.record(e.Output(result=result))
        except JournalMismatch as exc:
            return Failed(exc)
        return Finished(result, new)

    def cancel_attempt(self) -> None:
        """End the attempt now: the handler and its steps are cancelled."""
        self._scope.cancel()

    def attempt_finished(self) -> anyio.Event:
        return self._finished

    # ------------------------------------------------------------ commands

    def record_command(self, command: e.Entry) -> e.Entry:
        try:
            entry, new = self.machine.record(command)
        except JournalMismatch as exc:
            self._journal_diverged(exc)
            raise AttemptAborted(str(exc)) from None
        self._command_recorded(entry, new)
        return entry

    # ------------------------------------------------------------ run steps

    def start_run(
        self, entry: e.Run, action: typing.Callable[[], typing.Any], serde: Serde[typing.Any], options: RunOptions[typing.Any]
    ) -> None:
        """Take a step; it runs once awaited (see `wait`). A cancellation ahead makes that await raise 409 first."""
        if self._runs is None:
            raise AttemptAborted("a run step was started outside of an attempt")
        self._deferred_runs[entry.completion_id] = Step(entry, action, serde, options)

    def _launch(self, step: Step) -> None:
        assert self._runs is not None
        self._runs_in_flight += 1
        self._runs.start_soon(self._execute, step, self.machine.cancellation_given, name=f"run {step.entry.name}")

    async def _execute(self, step: Step, started_after_cancel: bool) -> None:
        entry, action = step.entry, step.action
        run_here = is_async_callable(action)
        try:
            try:
                self._fault("run.before_effect")
                if run_here:
                    value = await action()
                else:
                    call = functools.partial(contextvars.copy_context().run, action)
                    value = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
                result: bytes | e.Failure = step.serde.serialize(value)
            except TerminalError as exc:
                result = e.Failure(exc.status_code, exc.message, exc.metadata)
            except Exception as exc:  # a retryable failure: this attempt ends, attributed to the step
                if self.machine.cancellation_given and not started_after_cancel:
                    # The handler left this step behind when it was cancelled and is running its
                    # compensations: retrying would cut them short. Awaited again, it starts again.
                    log.info(
                        "invocation %s: step '%s' failed after the handler was cancelled; not retried: %s",
                        self.record.id,
                        entry.name,
                        exc,
                    )
                    self._deferred_runs[entry.completion_id] = step
                    return
                self._step_failed(step, explain_wrong_loop(exc) if run_here else exc)
                return
            self._fault("run.after_effect")
            self._step_completed(entry, result)
        finally:
            self._runs_in_flight -= 1
            self._wakeup.set()

    # ------------------------------------------------------------ waiting

    async def wait(self, handles: typing.Collection[int], need_all: bool) -> None:
        """Wait until the journal satisfies the handles; raises 409 on a cancellation, or suspends."""
        machine = self.machine
        timed_out = False
        while True:
            verdict = p.progress(
                machine,
                handles,
                need_all,
                deferred_runs=self._deferred_runs,
                runs_in_flight=self._runs_in_flight,
                input_closed=timed_out or not self._input_open,
            )
            timed_out = False
            if verdict is p.SATISFIED:
                return
            if isinstance(verdict, p.Cancelled):
                for call in verdict.calls:
                    callee = self._callee_of(call)
                    if callee is not None:  # cancellation reaches the calls this handler still waits for (not its sends)
                        self.record_command(e.SendSignal(target_invocation_id=callee, signal_index=e.CANCEL_SIGNAL))
                raise TerminalError("canceled", 409)
            if self._finished.is_set():
                end_abandoned_waiter()
            self._ensure_running()
            if isinstance(verdict, p.StartRuns):
                for handle in verdict.handles:
                    self._launch(self._deferred_runs.pop(handle))
            elif isinstance(verdict, p.Suspend):
                self._suspend(handles, verdict.pending)
                raise SuspendedException()
            elif verdict is p.AWAIT_PROGRESS:
                await self._wakeup.next().wait()
            else:
                timed_out = await self._await_input(self._wakeup.next())

    # ------------------------------------------------------------ what the host does (its I/O)

    @property
    @abc.abstractmethod
    def record(self) -> InvocationInfo: ...

    @property
    @abc.abstractmethod
    def state(self) -> dict[str, bytes]: ...

    @property
    @abc.abstractmethod
    def attempt_headers(self) -> dict[str, str] | None: ...

    @property
    @abc.abstractmethod
    def partial_state(self) -> bool: ...

    @abc.abstractmethod
    def now_ms(self) -> int: ...

    @abc.abstractmethod
    def due_ms(self, delay_ms: int) -> int: ...

    @abc.abstractmethod
    def kind_of(self, target: e.Target) -> str | None: ...

    @abc.abstractmethod
    def _command_recorded(self, entry: e.Entry, new: bool) -> None:
        """The handler issued `entry` (`new`: appended, not replayed): persist what is new."""

    @abc.abstractmethod
    def _journal_diverged(self, mismatch: JournalMismatch) -> None:
        """The handler issued a command the journal does not hold there: the attempt fails."""

    @abc.abstractmethod
    def _step_completed(self, entry: e.Run, result: bytes | e.Failure) -> None:
        """A step ended with a value or a TerminalError: make it the completion of `entry`."""

    @abc.abstractmethod
    def _step_failed(self, step: Step, error: BaseException) -> None:
        """A step raised a retryable error: the attempt ends, attributed to it (or its retries are exhausted)."""

    @abc.abstractmethod
    def _callee_of(self, call: e.Call) -> str | None:
        """The invocation id of a call's callee, if this attempt knows it (a cancellation reaches it)."""

    async def _await_input(self, wakeup: anyio.Event) -> bool:
        """Wait for `wakeup`, as long as input may come; True: it did not come, suspend if nothing else is in flight."""
        await wakeup.wait()
        return False

    @abc.abstractmethod
    def _suspend(self, handles: typing.Collection[int], pending: tuple[int, ...]) -> None:
        """The wait on `handles` suspends the invocation (`pending`: those not yet satisfied)."""

    def _handler_ended(self, end: HandlerEnd) -> None:
        """The handler ended (its steps still run until this returns): say so, if the host says it at once."""

    def _ensure_running(self) -> None:
        """Raise if the attempt ended in a way its waits must see (the host sent its last word)."""

    def _fault(self, point: str) -> None:
        """A fault-injection point (durio.actors.faults), for hosts that have them."""
