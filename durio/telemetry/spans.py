"""The spans: one per invocation, one per attempt, one per step, with Restate's attribute names.

    <invocation target>            the invocation, from creation to completion (exported at completion)
    ├── attempt                    each run of the handler (ends when it completes, suspends or fails)
    │   ├── run <name>             a run step completed in that attempt (a compensation is one too)
    │   └── <callee's invocation>  a call or send issued in that attempt continues the trace
    ├── sleep                      a durable sleep, from the command to the wake-up
    ├── call <target>              waiting for a call's result
    └── awakeable                  waiting for an awakeable, until it is completed

Waits hang from the invocation, not an attempt: an invocation suspends while it
waits, so the attempt that began waiting is over long before the wait is.
The invocation span's ids are derived from its id (trace_ids.py), so spans
exported before it (and after a restart) name it as their parent.
"""

from __future__ import annotations

import os
import random
import time
import typing
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from durio.journal import entries as e
from durio.telemetry.trace_ids import format_traceparent, invocation_ids

if typing.TYPE_CHECKING:
    from durio.actors.invocation import InvocationActor

_MS = 1_000_000  # nanoseconds
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OK = Status(StatusCode.UNSET)


@dataclass
class Attempt:
    """The span of the attempt running now: its ids are fixed at its start, it is exported at its end."""

    invocation: SpanContext  # the invocation's span (its ids derived from the invocation id)
    parent: SpanContext | None  # the invocation's parent: the traceparent it came with
    span_id: int
    start_ns: int
    retry_count: int

    @property
    def context(self) -> SpanContext:
        return SpanContext(self.invocation.trace_id, self.span_id, is_remote=False, trace_flags=_SAMPLED)


def _new_span_id() -> int:
    return random.getrandbits(64) or 1


def _journal_index(actor: "InvocationActor", entry: e.Entry) -> int | None:
    return next((i for i, x in enumerate(actor.machine.entries) if x is entry), None)


class Tracing:
    """Spans are made whole when they end and handed to the SDK's batch processor as ReadableSpans: every
    span's ids and times are known by then, and that costs a fifth of the SDK's live-span API (measured:
    4 against 20 microseconds a span), which matters in a server that makes five spans a request."""

    def __init__(self, processor: BatchSpanProcessor, resource: Resource) -> None:
        self.processor = processor
        self.resource = resource
        self.scope = InstrumentationScope("durio")

    @classmethod
    def from_environment(cls) -> "Tracing":
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the exporter OTEL_EXPORTER_OTLP_*,
        # the processor OTEL_BSP_*.
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "durio"})
        return cls(BatchSpanProcessor(OTLPSpanExporter()), resource)

    def shutdown(self) -> None:
        """Export what is buffered and stop (blocking: call it in a thread)."""
        self.processor.shutdown()

    def _emit(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, typing.Any],
        kind: SpanKind = SpanKind.INTERNAL,
        failure: e.Failure | str | None = None,
    ) -> None:
        status = _OK
        if failure is not None:
            if isinstance(failure, e.Failure):
                attributes["restate.error.code"] = failure.code
                failure = failure.message
            status = Status(StatusCode.ERROR, failure)
        self.processor.on_end(
            ReadableSpan(
                name=name,
                context=context,
                parent=parent,
                resource=self.resource,
                attributes=attributes,
                kind=kind,
                status=status,
                start_time=start_ns,
                end_time=max(end_ns, start_ns),
                instrumentation_scope=self.scope,
            )
        )

    # ------------------------------------------------------------ the invocation

    def _invocation(self, actor: "InvocationActor") -> tuple[SpanContext, SpanContext | None]:
        attempt: Attempt | None = actor.trace_attempt
        if attempt is not None:
            return attempt.invocation, attempt.parent
        trace_id, span_id, parent = invocation_ids(actor.id, actor.machine.input.headers)
        own = SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)
        remote = None if parent is None else SpanContext(parent.trace_id, parent.span_id, is_remote=True, trace_flags=_SAMPLED)
        return own, remote

    def end_invocation(self, actor: "InvocationActor", result: bytes | e.Failure, end_ms: int) -> None:
        own, parent = self._invocation(actor)
        attributes = {"restate.invocation.id": actor.id, "restate.invocation.target": str(actor.record.target)}
        self._emit(
            str(actor.record.target),
            own,
            parent,
            actor.record.created_ms * _MS,
            end_ms * _MS,
            attributes,
            SpanKind.SERVER,
            result if isinstance(result, e.Failure) else None,
        )

    # ------------------------------------------------------------ attempts

    def start_attempt(self, actor: "InvocationActor", retry_count: int) -> Attempt:
        """Fix the attempt's span; calls, sends and remote requests of the attempt carry its traceparent."""
        actor.trace_attempt = None
        invocation, parent = self._invocation(actor)
        attempt = Attempt(invocation, parent, _new_span_id(), time.time_ns(), retry_count)
        actor.trace_attempt = attempt
        actor.attempt_headers = {
            **dict(actor.machine.input.headers),
            "traceparent": format_traceparent(invocation.trace_id, attempt.span_id),
        }
        return attempt

    def end_attempt(self, actor: "InvocationActor", attempt: Attempt | None, outcome: typing.Any) -> None:
        if attempt is None:
            return
        attributes = {
            "restate.invocation.id": actor.id,
            "restate.invocation.target": str(actor.record.target),
            "restate.invocation.retry_count": attempt.retry_count,
        }
        failure = None
        if isinstance(outcome, (bytes, e.Failure)):
            attributes["restate.attempt.outcome"] = "completed"
        elif type(outcome).__name__ == "AttemptFailure":
            attributes["restate.attempt.outcome"] = "failed"
            failure = e.Failure(outcome.code, outcome.message)
        else:
            attributes["restate.attempt.outcome"] = "suspended"
        self._emit("attempt", attempt.context, attempt.invocation, attempt.start_ns, time.time_ns(), attributes, failure=failure)
        actor.trace_attempt = None

    def traceparent_of_attempt(self, actor: "InvocationActor") -> str | None:
        attempt: Attempt | None = actor.trace_attempt
        return None if attempt is None else format_traceparent(attempt.invocation.trace_id, attempt.span_id)

    def tag_outgoing(self, actor: "InvocationActor", entry: e.Call | e.OneWayCall) -> None:
        """A call or send continues this attempt's trace, unless the handler gave it a traceparent itself."""
        traceparent = self.traceparent_of_attempt(actor)
        if traceparent is not None and not any(name.lower() == "traceparent" for name, _ in entry.headers):
            entry.headers = [*entry.headers, ("traceparent", traceparent)]

    # ------------------------------------------------------------ steps

    def step_completed(self, actor: "InvocationActor", notification: e.Notification) -> None:
        """A step's result arrived: its span, from the command to now."""
        entries = actor.machine.entries
        command: e.Entry | None = None
        if isinstance(notification, e.Completion):
            command = next(
                (
                    x
                    for x in reversed(entries)
                    if x.is_command and getattr(x, "completion_id", None) == notification.completion_id
                ),
                None,
            )
            if not isinstance(command, (e.Run, e.Sleep, e.Call)):
                return
        elif isinstance(notification, e.Signal) and notification.signal_index >= e.FIRST_AWAKEABLE_SIGNAL:
            # An awakeable has no command: the wait began with the last command before its completion.
            command = next((x for x in reversed(entries) if x.is_command and x is not notification), None)
        else:
            return
        invocation, _ = self._invocation(actor)
        attempt: Attempt | None = actor.trace_attempt
        attributes: dict[str, typing.Any] = {"restate.invocation.id": actor.id}
        parent = invocation
        if isinstance(command, e.Run):
            name = f"run {command.name}"
            if attempt is not None:
                parent = attempt.context
        elif isinstance(command, e.Sleep):
            name = "sleep"
        elif isinstance(command, e.Call):
            name = f"call {command.target}"
            attributes["restate.invocation.callee_id"] = command.callee_id
        else:
            name = "awakeable"
        index = _journal_index(actor, command) if command is not None else None
        if index is not None:
            attributes["restate.journal.index"] = index
        start_ms = command.ts if command is not None and command.ts else notification.ts
        context = SpanContext(invocation.trace_id, _new_span_id(), is_remote=False, trace_flags=_SAMPLED)
        result = getattr(notification, "result", None)
        self._emit(
            name,
            context,
            parent,
            start_ms * _MS,
            notification.ts * _MS,
            attributes,
            failure=result if isinstance(result, e.Failure) else None,
        )
