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

import dataclasses
import time
import traceback
import typing

from anyio.streams.memory import MemoryObjectSendStream

from durio.journal import entries as e
from durio.journal.machine import InvocationMachine, JournalMismatch
from durio.protocol import messages as m
from durio.protocol.convert import command_to_message, failure_message
from durio.protocol.framing import encode
from durio.protocol.value_codec import encoded
from durio.sdk.attempt import AttemptHost, Failed, Finished, HandlerEnd, Step, Wakeup
from durio.sdk.definitions import Handler
from durio.sdk.errors import AttemptAborted, RetryableError
from durio.sdk.options import run_backoff

M = m.MESSAGES


@dataclasses.dataclass(frozen=True)
class StartedInvocation:
    """The invocation as the server's StartMessage names it (what InvocationHost.record is to the SDK)."""

    id: str
    target: e.Target
    idempotency_key: str | None = None  # protocols V5/V6 do not carry it (the official SDK's is None too)


class EndpointAttempt(AttemptHost):
    """An InvocationHost whose journal comes from, and goes to, a Restate server."""

    def __init__(
        self,
        handler: Handler,
        start: typing.Any,
        journal: list[e.Entry],
        version: int,
        out: MemoryObjectSendStream[bytes],
        attempt_headers: dict[str, str] | None = None,
        codec: typing.Any = None,
    ) -> None:
        # Set whenever a wait may be satisfied now: a step ended, a notification came, the request closed.
        super().__init__(handler, InvocationMachine(journal), Wakeup())
        # The deployment's journal value codec: what is sent is encoded (durio.protocol.value_codec).
        self.codec = codec
        # The headers of the HTTP request that carries this attempt (ctx.request().attempt_headers).
        self._attempt_headers = attempt_headers or {}
        self.version = version
        target = e.Target(handler.service_name, handler.name, start.key or None)
        self._record = StartedInvocation(id=start.debug_id, target=target)
        self._state = {bytes(entry.key).decode(): bytes(entry.value) for entry in start.state_map}
        self._partial_state: bool = start.partial_state
        self.retry_count = start.retry_count_since_last_stored_entry
        self.retry_duration_ms = start.duration_since_last_stored_entry
        self._out = out
        self._terminal_sent = False

    # ------------------------------------------------------------ the attempt

    async def run(self) -> None:
        await self.run_handler()
        if not self._terminal_sent:
            self._error(500, "the handler ended without an outcome")

    def _handler_ended(self, end: HandlerEnd) -> None:
        if isinstance(end, Finished):
            if end.new:
                self._emit(*command_to_message(encoded(e.Output(result=end.result), self.codec), self.version))
            self._terminal(m.END, M["EndMessage"]())
        elif isinstance(end, Failed):
            self._failed(end.error)
        # A suspension or an abort wrote its terminal message already.

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, JournalMismatch):
            self._error(570, str(error), related=(error.index, error.issued))
        else:  # the SDK's text: ValueError('boom')
            self._error(500, repr(error), "".join(traceback.format_exception(error)))

    # ------------------------------------------------------------ what the server sends meanwhile

    def notify(self, notification: e.Notification) -> None:
        """A notification the server sent while the attempt runs (bidirectional mode)."""
        machine = self.machine
        if machine.has_notification(e.handle_of(notification)):
            return
        machine.mark_durable(machine.append_notification(notification) + 1)
        self._wakeup.set()

    def input_closed(self) -> None:
        """The server closed its side: nothing more arrives, and a wait nothing satisfies suspends."""
        self._input_open = False
        self._wakeup.set()

    def fail(self, code: int, message: str) -> None:
        """The server sent something unreadable: the attempt ends with an error it is told about."""
        self._error(code, message)
        self.cancel_attempt()

    def abandon(self) -> None:
        """The server went away mid-attempt: stop; it retries the invocation in a new attempt."""
        self._terminal_sent = True
        self.cancel_attempt()

    def _emit(self, type_id: int, message: typing.Any) -> None:
        if self._terminal_sent:
            return
        self._out.send_nowait(encode(type_id, message))

    def _terminal(self, type_id: int, message: typing.Any) -> None:
        self._emit(type_id, message)
        self._terminal_sent = True

    def _error(
        self,
        code: int,
        message: str,
        stacktrace: str = "",
        related: tuple[int, e.Entry] | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
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

    @property
    def record(self) -> StartedInvocation:
        return self._record

    @property
    def state(self) -> dict[str, bytes]:
        return self._state

    @property
    def attempt_headers(self) -> dict[str, str]:
        return self._attempt_headers

    @property
    def partial_state(self) -> bool:
        return self._partial_state

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def due_ms(self, delay_ms: int) -> int:
        return int(time.time() * 1000) + 1 + delay_ms

    def kind_of(self, target: e.Target) -> str | None:
        return None  # the server assigns callee ids: no need to know other services here

    # ------------------------------------------------------------ the attempt's I/O (AttemptHost)

    def _journal_diverged(self, mismatch: JournalMismatch) -> None:
        self._error(570, str(mismatch), related=(mismatch.index, mismatch.issued))

    def _command_recorded(self, entry: e.Entry, new: bool) -> None:
        if isinstance(entry, (e.Call, e.OneWayCall)):
            entry.callee_id = ""  # the server assigns it and tells us in a notification
        if new:
            self._emit(*command_to_message(encoded(entry, self.codec), self.version))

    def _step_completed(self, entry: e.Run, result: bytes | e.Failure) -> None:
        """Proposed to the server, which makes it durable and sends it back as the step's notification."""
        proposal = M["ProposeRunCompletionMessage"](result_completion_id=entry.completion_id)
        if isinstance(result, e.Failure):
            proposal.failure.CopyFrom(failure_message(result, self.version))
        else:
            proposal.value = result if self.codec is None else self.codec.encode(result)
        self._emit(m.PROPOSE_RUN_COMPLETION, proposal)

    def _step_failed(self, step: Step, error: BaseException) -> None:
        """The step's own retry policy counts the server's retries since the journal last grew (StartMessage)."""
        entry = step.entry
        message = repr(error)  # the official SDK's text: ValueError('boom')
        backoff = run_backoff(step.options)
        failures = self.retry_count + 1
        index = next((i for i, x in enumerate(self.machine.entries) if x is entry), 0)
        if backoff is not None and backoff.exhausted(failures, self.retry_duration_ms / 1000):
            self._step_completed(entry, e.Failure(500, message))
            return
        delay: int | None
        if isinstance(error, RetryableError) and error.retry_after is not None:
            delay = int(error.retry_after.total_seconds() * 1000)
        else:
            delay = None if backoff is None else int(backoff.delay_s(failures) * 1000)
        self._error(
            getattr(error, "status_code", 500),
            message,
            "".join(traceback.format_exception(error)),
            related=(index, entry),
            retry_after_ms=delay,
        )
        if self._runs is not None:
            self._runs.cancel_scope.cancel()

    def _callee_of(self, call: e.Call) -> str | None:
        # A callee's id counts only if this attempt has consumed it, as it had in the first run.
        if self.machine.is_completed(call.invocation_id_completion_id):
            callee = self.machine.result(call.invocation_id_completion_id)
            if isinstance(callee, str):
                return callee
        return None

    def _ensure_running(self) -> None:
        if self._terminal_sent:
            raise AttemptAborted("the attempt already ended")

    def _suspend(self, handles: typing.Collection[int], pending: tuple[int, ...]) -> None:
        """The request is closed and nothing runs: nothing more can arrive in this attempt."""
        suspension = M["SuspensionMessage"](
            waiting_completions=sorted(h for h in pending if h > 0),
            waiting_signals=sorted({-h for h in pending if h < 0 and not e.is_named_signal_handle(h)} | {e.CANCEL_SIGNAL}),
            waiting_named_signals=sorted(self.machine.signal_names[h] for h in pending if e.is_named_signal_handle(h)),
        )
        self._terminal(m.SUSPENSION, suspension)
