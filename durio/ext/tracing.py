"""The official SDK's `restate.ext.tracing`: OpenTelemetry spans parented under the invocation's trace.

Wrap a TracerProvider (or a Tracer) and pass it to an instrumentor: every span it starts inside a handler
becomes a child of the trace the invocation's request carries (its `traceparent`: the caller's, embedded;
the server's, in a remote attempt), spans are no-ops while the handler replays its journal (so each is
recorded once), and spans left open when an attempt ends are ended then.
"""

from __future__ import annotations

import contextlib
import typing

try:
    from opentelemetry.trace import INVALID_SPAN, SpanKind, Tracer, TracerProvider, use_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover (depends on what is installed)
    raise ImportError("durio.ext.tracing needs OpenTelemetry: pip install opentelemetry-api") from exc

from durio.sdk.invoke import current_context, extension_data
from durio.sdk.logs import is_replaying

_PROPAGATOR = TraceContextTextMapPropagator()
_OPEN_SPANS = "durio.ext.tracing open spans"


class _OpenSpans:
    """Spans started in one attempt; the ones still recording when it ends are ended (a handler that raised)."""

    def __init__(self) -> None:
        self.spans: list[typing.Any] = []

    def __close__(self) -> None:
        for span in self.spans:
            if span.is_recording():
                span.end()
        self.spans.clear()


class RestateTracer(Tracer):
    """A Tracer whose spans are children of the invocation's trace, and no-ops during a replay."""

    def __init__(self, tracer: typing.Any) -> None:
        self._tracer = tracer

    @staticmethod
    def _root_context() -> typing.Any:
        ctx = current_context()
        if ctx is None:
            raise Exception("You are not in a Restate handler")
        return _PROPAGATOR.extract(ctx.request().attempt_headers)

    @staticmethod
    def _track(span: typing.Any) -> None:
        ctx = current_context()
        if ctx is not None:
            extension_data(ctx).setdefault(_OPEN_SPANS, _OpenSpans()).spans.append(span)

    def start_span(
        self,
        name: str,
        context: typing.Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: typing.Any = None,
        links: typing.Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> typing.Any:
        if is_replaying():
            return INVALID_SPAN
        span = self._tracer.start_span(
            name, self._root_context() or context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        self._track(span)
        return span

    @contextlib.contextmanager
    def start_as_current_span(  # type: ignore[override]  # OpenTelemetry's own context-manager type is private
        self,
        name: str,
        context: typing.Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: typing.Any = None,
        links: typing.Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> typing.Iterator[typing.Any]:
        if is_replaying():
            with use_span(INVALID_SPAN, end_on_exit=False) as span:
                yield span
            return
        with self._tracer.start_as_current_span(
            name,
            self._root_context() or context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        ) as span:
            yield span

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._tracer, name)


class RestateTracerProvider(TracerProvider):
    """A TracerProvider whose tracers are RestateTracers."""

    def __init__(self, provider: typing.Any) -> None:
        self._provider = provider

    def get_tracer(self, *args: typing.Any, **kwargs: typing.Any) -> RestateTracer:
        return RestateTracer(self._provider.get_tracer(*args, **kwargs))

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._provider, name)


__all__ = ["RestateTracer", "RestateTracerProvider"]
