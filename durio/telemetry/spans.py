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

import contextvars
import os
import typing

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from durio.journal import entries as e
from durio.telemetry.trace_ids import format_traceparent, invocation_ids

if typing.TYPE_CHECKING:
    from durio.actors.invocation import InvocationActor

_MS = 1_000_000  # nanoseconds
# The ids the next span gets, when they are chosen rather than random (the invocation span's).
_CHOSEN: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("durio chosen span ids", default=None)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class _ChosenIds(IdGenerator):
    """Random ids, except for a span started while _CHOSEN names its (trace id, span id)."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        chosen = _CHOSEN.get()
        return chosen[1] if chosen is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        chosen = _CHOSEN.get()
        return chosen[0] if chosen is not None else self._random.generate_trace_id()


def _context_of(span_context: SpanContext) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def _journal_index(actor: "InvocationActor", entry: e.Entry) -> int | None:
    return next((i for i, x in enumerate(actor.machine.entries) if x is entry), None)


class Tracing:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("durio")

    @classmethod
    def from_environment(cls) -> "Tracing":
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the exporter OTEL_EXPORTER_OTLP_*.
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "durio"})
        provider = TracerProvider(resource=resource, id_generator=_ChosenIds())
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is buffered and stop (blocking: call it in a thread)."""
        self.provider.shutdown()

    # ------------------------------------------------------------ the invocation

    def _invocation(self, actor: "InvocationActor") -> tuple[SpanContext, SpanContext | None]:
        trace_id, span_id, parent = invocation_ids(actor.id, actor.machine.input.headers)
        own = SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)
        remote = None if parent is None else SpanContext(parent.trace_id, parent.span_id, is_remote=True, trace_flags=_SAMPLED)
        return own, remote

    def _attributes(self, actor: "InvocationActor") -> dict[str, typing.Any]:
        return {"restate.invocation.id": actor.id, "restate.invocation.target": str(actor.record.target)}

    def end_invocation(self, actor: "InvocationActor", result: bytes | e.Failure, end_ms: int) -> None:
        own, parent = self._invocation(actor)
        token = _CHOSEN.set((own.trace_id, own.span_id))
        try:
            span = self.tracer.start_span(
                str(actor.record.target), context=_context_of(parent) if parent is not None else Context(),
                kind=SpanKind.SERVER, start_time=actor.record.created_ms * _MS, attributes=self._attributes(actor))
        finally:
            _CHOSEN.reset(token)
        if isinstance(result, e.Failure):
            span.set_attribute("restate.error.code", result.code)
            span.set_status(Status(StatusCode.ERROR, result.message))
        span.end(end_time=max(end_ms, actor.record.created_ms) * _MS)

    # ------------------------------------------------------------ attempts

    def start_attempt(self, actor: "InvocationActor", retry_count: int) -> typing.Any:
        """Start the attempt's span; calls, sends and remote requests of the attempt carry its traceparent."""
        own, _ = self._invocation(actor)
        attributes = {**self._attributes(actor), "restate.invocation.retry_count": retry_count}
        span = self.tracer.start_span("attempt", context=_context_of(own), kind=SpanKind.INTERNAL, attributes=attributes)
        context = span.get_span_context()
        actor.trace_attempt = span
        actor.attempt_headers = {**dict(actor.machine.input.headers),
                                 "traceparent": format_traceparent(context.trace_id, context.span_id)}
        return span

    def end_attempt(self, actor: "InvocationActor", span: typing.Any, outcome: typing.Any) -> None:
        if isinstance(outcome, (bytes, e.Failure)):
            span.set_attribute("restate.attempt.outcome", "completed")
        elif type(outcome).__name__ == "AttemptFailure":
            span.set_attribute("restate.attempt.outcome", "failed")
            span.set_attribute("restate.error.code", outcome.code)
            span.set_status(Status(StatusCode.ERROR, outcome.message))
        else:
            span.set_attribute("restate.attempt.outcome", "suspended")
        span.end()
        actor.trace_attempt = None

    def traceparent_of_attempt(self, actor: "InvocationActor") -> str | None:
        span = actor.trace_attempt
        if span is None:
            return None
        context = span.get_span_context()
        return format_traceparent(context.trace_id, context.span_id)

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
            command = next((x for x in reversed(entries) if x.is_command and getattr(x, "completion_id", None) == notification.completion_id), None)
            if not isinstance(command, (e.Run, e.Sleep, e.Call)):
                return
        elif isinstance(notification, e.Signal) and notification.signal_index >= e.FIRST_AWAKEABLE_SIGNAL:
            # An awakeable has no command: the wait began with the last command before its completion.
            command = next((x for x in reversed(entries) if x.is_command and x is not notification), None)
        else:
            return
        attributes: dict[str, typing.Any] = self._attributes(actor)
        if isinstance(command, e.Run):
            name, parent = f"run {command.name}", actor.trace_attempt
            attributes["restate.run.name"] = command.name
        elif isinstance(command, e.Sleep):
            name, parent = "sleep", None
        elif isinstance(command, e.Call):
            name, parent = f"call {command.target}", None
            attributes["restate.invocation.callee_id"] = command.callee_id
        else:
            name, parent = "awakeable", None
            attributes["restate.awakeable.signal_index"] = typing.cast(e.Signal, notification).signal_index
        index = _journal_index(actor, command) if command is not None else None
        if index is not None:
            attributes["restate.journal.index"] = index
        parent_context = parent.get_span_context() if parent is not None else self._invocation(actor)[0]
        start_ms = command.ts if command is not None and command.ts else notification.ts
        span = self.tracer.start_span(name, context=_context_of(parent_context), start_time=start_ms * _MS, attributes=attributes)
        result = getattr(notification, "result", None)
        if isinstance(result, e.Failure):
            span.set_attribute("restate.error.code", result.code)
            span.set_status(Status(StatusCode.ERROR, result.message))
        span.end(end_time=max(notification.ts, start_ms) * _MS)
