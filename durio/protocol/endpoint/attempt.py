"""Running one invocation attempt for a Restate server, over the service protocol.

The server sends the journal; the same state machine and contexts that run
handlers in-process replay it. New commands go back as frames, a `run`
step's result as a ProposeRunCompletion. While the server keeps its side of
the request open (a bidirectional HTTP/2 stream), what it sends meanwhile
(a call's result, a fired timer, a step's confirmed result) reaches the
waiting handler. An await nothing can satisfy any more (the request is
closed: request/response mode, or the server asks it to suspend) ends the
attempt with a Suspension: the server resumes the invocation in a new
request once what it waits for has arrived.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import logging
import time
import traceback
import typing

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream

from durio.backend import end_abandoned_waiter, explain_wrong_loop
from durio.journal import entries as e
from durio.journal.machine import InvocationMachine, JournalMismatch
from durio.protocol import messages as m
from durio.protocol.convert import command_to_message, failure_message
from durio.protocol.framing import encode
from durio.protocol.value_codec import encoded
from durio.sdk.context import context_for
from durio.sdk.definitions import Handler
from durio.sdk.errors import AttemptAborted, RetryableError, SuspendedException, TerminalError
from durio.sdk.invoke import invoke_handler
from durio.sdk.options import RunOptions, run_backoff
from durio.sdk.serde import Serde

log = logging.getLogger("durio.endpoint")

M = m.MESSAGES


@dataclasses.dataclass(frozen=True)
class StartedInvocation:
    """The invocation as the server's StartMessage names it (what InvocationHost.record is to the SDK)."""

    id: str
    target: e.Target
    idempotency_key: str | None = None  # protocols V5/V6 do not carry it (the official SDK's is None too)


class _EndAttempt(Exception):
    """The attempt already wrote its terminal message (an error)."""


class EndpointAttempt:
    """An InvocationHost whose journal comes from, and goes to, a Restate server."""

    def __init__(self, handler: Handler, start: typing.Any, journal: list[e.Entry], version: int, out: MemoryObjectSendStream[bytes],
                 attempt_headers: dict[str, str] | None = None, codec: typing.Any = None) -> None:
        self.handler = handler
        # The deployment's journal value codec: what is sent is encoded (durio.protocol.value_codec).
        self.codec = codec
        # The headers of the HTTP request that carries this attempt (ctx.request().attempt_headers).
        self.attempt_headers = attempt_headers or {}
        self.version = version
        self.machine = InvocationMachine(journal)
        target = e.Target(handler.service_name, handler.name, start.key or None)
        self.record = StartedInvocation(id=start.debug_id, target=target)
        self.state = {bytes(entry.key).decode(): bytes(entry.value) for entry in start.state_map}
        self.partial_state = start.partial_state
        self.retry_count = start.retry_count_since_last_stored_entry
        self.retry_duration_ms = start.duration_since_last_stored_entry
        self._out = out
        self._run_nursery: anyio.abc.TaskGroup | None = None
        self._runs_in_flight = 0
        # Steps not started yet, by completion id. A step starts when the handler awaits it, as in the official
        # SDK (one nobody awaits never runs), and not while a cancellation comes first.
        self._deferred_runs: dict[int, tuple[e.Run, typing.Callable[[], typing.Any], Serde[typing.Any], RunOptions[typing.Any]]] = {}
        # Set whenever a wait may be satisfied now: a step ended, a notification came, the request closed.
        self._progress = anyio.Event()
        self._input_open = True
        self._finished = anyio.Event()
        self._scope = anyio.CancelScope()
        self._terminal_sent = False
        self._commands_sent = 0

    # ------------------------------------------------------------ the attempt

    async def run(self) -> None:
        context = context_for(self)
        try:
            with self._scope:
                await self._run_handler(context)
        finally:
            self._finished.set()
            self._progress.set()  # a wait the handler abandoned (asyncio) wakes, and ends
        if not self._terminal_sent:
            self._error(500, "the handler ended without an outcome")

    async def _run_handler(self, context: typing.Any) -> None:
        async with anyio.create_task_group() as runs:
            self._run_nursery = runs
            try:
                output = await invoke_handler(self.handler, context, self.machine.input.value)
                self._finish(output)
            except TerminalError as exc:
                self._finish(e.Failure(exc.status_code, exc.message, exc.metadata))
            except SuspendedException:
                pass  # the Suspension is written
            except AttemptAborted:
                pass  # the Error is written
            except _EndAttempt:
                pass
            except Exception as exc:
                self._error(500, repr(explain_wrong_loop(exc)), traceback.format_exc())  # the SDK's text: ValueError('boom')
            finally:
                runs.cancel_scope.cancel()

    # ------------------------------------------------------------ what the server sends meanwhile

    def notify(self, notification: e.Notification) -> None:
        """A notification the server sent while the attempt runs (bidirectional mode)."""
        machine = self.machine
        if machine.has_notification(e.handle_of(notification)):
            return
        machine.mark_durable(machine.append_notification(notification) + 1)
        self._progress.set()

    def input_closed(self) -> None:
        """The server closed its side: nothing more arrives, and a wait nothing satisfies suspends."""
        self._input_open = False
        self._progress.set()

    def fail(self, code: int, message: str) -> None:
        """The server sent something unreadable: the attempt ends with an error it is told about."""
        self._error(code, message)
        self._scope.cancel()

    def abandon(self) -> None:
        """The server went away mid-attempt: stop; it retries the invocation in a new attempt."""
        self._terminal_sent = True
        self._scope.cancel()

    def _finish(self, result: bytes | e.Failure) -> None:
        try:
            entry, new = self.machine.record(e.Output(result=result))
        except JournalMismatch as exc:
            self._error(570, str(exc), related=(exc.index, exc.issued))
            return
        if new:
            self._emit(*command_to_message(encoded(entry, self.codec), self.version))
        self._terminal(m.END, M["EndMessage"]())

    def _emit(self, type_id: int, message: typing.Any) -> None:
        if self._terminal_sent:
            return
        self._out.send_nowait(encode(type_id, message))

    def _terminal(self, type_id: int, message: typing.Any) -> None:
        self._emit(type_id, message)
        self._terminal_sent = True

    def _error(self, code: int, message: str, stacktrace: str = "", related: tuple[int, e.Entry] | None = None,
               retry_after_ms: int | None = None) -> None:
        if self._terminal_sent:
            return
        error = M["ErrorMessage"](code=code, message=message, stacktrace=stacktrace)
        if related is not None:
            index, entry = related
            error.related_command_index = index
            name = getattr(entry, "name", "")
            if name:
                error.related_command_name = name
            try:
                error.related_command_type = command_to_message(entry, self.version)[0]
            except Exception:
                pass
        if retry_after_ms is not None:
            error.next_retry_delay = retry_after_ms
        self._terminal(m.ERROR, error)

    # ------------------------------------------------------------ InvocationHost

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def due_ms(self, delay_ms: int) -> int:
        return int(time.time() * 1000) + 1 + delay_ms

    def kind_of(self, target: e.Target) -> str | None:
        return None  # the server assigns callee ids: no need to know other services here

    def attempt_finished(self) -> anyio.Event:
        return self._finished

    def record_command(self, command: e.Entry) -> e.Entry:
        try:
            entry, new = self.machine.record(command)
        except JournalMismatch as exc:
            self._error(570, str(exc), related=(exc.index, exc.issued))
            raise AttemptAborted(str(exc)) from None
        if isinstance(entry, (e.Call, e.OneWayCall)):
            entry.callee_id = ""  # the server assigns it and tells us in a notification
        if new:
            self._emit(*command_to_message(encoded(entry, self.codec), self.version))
        return entry

    def start_run(self, entry: e.Run, action: typing.Callable[[], typing.Any], serde: Serde[typing.Any], options: RunOptions[typing.Any]) -> None:
        """Take a step; it runs once awaited (see `wait`). A cancellation ahead makes that await raise 409 first."""
        assert self._run_nursery is not None
        self._deferred_runs[entry.completion_id] = (entry, action, serde, options)

    def _launch_run(self, entry: e.Run, action: typing.Callable[[], typing.Any], serde: Serde[typing.Any], options: RunOptions[typing.Any]) -> None:
        assert self._run_nursery is not None
        self._runs_in_flight += 1
        self._run_nursery.start_soon(self._execute_run, entry, action, serde, options, self.machine.cancellation_given)

    async def _execute_run(self, entry: e.Run, action: typing.Callable[[], typing.Any], serde: Serde[typing.Any],
                           options: RunOptions[typing.Any], started_after_cancel: bool) -> None:
        try:
            try:
                target = action
                while isinstance(target, functools.partial):
                    target = target.func
                if inspect.iscoroutinefunction(target):
                    try:
                        value = await action()
                    except (RuntimeError, TypeError) as exc:
                        explained = explain_wrong_loop(exc)
                        if explained is exc:
                            raise
                        raise explained from exc
                else:
                    call = functools.partial(contextvars.copy_context().run, action)
                    value = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
                self._propose(entry.completion_id, serde.serialize(value))
            except TerminalError as exc:
                self._propose(entry.completion_id, e.Failure(exc.status_code, exc.message, exc.metadata))
            except Exception as exc:
                if self.machine.cancellation_given and not started_after_cancel:
                    # Left behind by a cancelled handler that is running its compensations: not retried.
                    log.info("step '%s' failed after the handler was cancelled; not retried: %s", entry.name, exc)
                    self._deferred_runs[entry.completion_id] = (entry, action, serde, options)
                    return
                self._run_failed(entry, exc, options)
        finally:
            self._runs_in_flight -= 1
            self._progress.set()

    def _propose(self, completion_id: int, result: bytes | e.Failure) -> None:
        proposal = M["ProposeRunCompletionMessage"](result_completion_id=completion_id)
        if isinstance(result, e.Failure):
            proposal.failure.CopyFrom(failure_message(result, self.version))
        else:
            proposal.value = result if self.codec is None else self.codec.encode(result)
        self._emit(m.PROPOSE_RUN_COMPLETION, proposal)

    def _run_failed(self, entry: e.Run, exc: Exception, options: RunOptions[typing.Any]) -> None:
        message = repr(exc)  # the official SDK's text: ValueError('boom')
        backoff = run_backoff(options)
        failures = self.retry_count + 1
        index = next((i for i, x in enumerate(self.machine.entries) if x is entry), 0)
        if backoff is not None and backoff.exhausted(failures, self.retry_duration_ms / 1000):
            self._propose(entry.completion_id, e.Failure(500, message))
            return
        delay: int | None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            delay = int(exc.retry_after.total_seconds() * 1000)
        else:
            delay = None if backoff is None else int(backoff.delay_s(failures) * 1000)
        self._error(getattr(exc, "status_code", 500), message, traceback.format_exc(), related=(index, entry), retry_after_ms=delay)
        if self._run_nursery is not None:
            self._run_nursery.cancel_scope.cancel()

    async def wait(self, handles: typing.Collection[int], need_all: bool) -> None:
        machine = self.machine
        while not machine.wait(handles, need_all):
            if self._finished.is_set():
                end_abandoned_waiter()
            if self._terminal_sent:
                raise AttemptAborted("the attempt already ended")
            if self._deferred_runs and not machine.cancellation_ahead():
                for handle in handles:
                    deferred = self._deferred_runs.pop(handle, None)
                    if deferred is not None:
                        self._launch_run(*deferred)
            if self._runs_in_flight or self._input_open:
                # Shared by every task that waits now (asyncio.gather makes a task per future): each wakes.
                if self._progress.is_set():
                    self._progress = anyio.Event()
                await self._progress.wait()
                continue
            # Nothing runs and the request is closed: nothing more can arrive in this attempt. Suspend.
            pending = [h for h in handles if not machine.is_completed(h)]
            suspension = M["SuspensionMessage"](
                waiting_completions=sorted(h for h in pending if h > 0),
                waiting_signals=sorted({-h for h in pending if h < 0 and not e.is_named_signal_handle(h)} | {e.CANCEL_SIGNAL}),
                waiting_named_signals=sorted(machine.signal_names[h] for h in pending if e.is_named_signal_handle(h)),
            )
            self._terminal(m.SUSPENSION, suspension)
            raise SuspendedException()
        if machine.take_cancellation():
            self._cancel_children()
            raise TerminalError("canceled", 409)

    def _cancel_children(self) -> None:
        # A callee's id counts only if this attempt has consumed it, as it had in the first run.
        machine = self.machine
        for call in machine.calls_to_cancel():
            if machine.is_completed(call.invocation_id_completion_id):
                callee = machine.result(call.invocation_id_completion_id)
                if isinstance(callee, str):
                    self.record_command(e.SendSignal(target_invocation_id=callee, signal_index=e.CANCEL_SIGNAL))
