"""OpenTelemetry traces from the server: a span per invocation and per attempt, child spans per step.

Off unless an OTLP endpoint is configured by the standard environment variables
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`; also
honoured: `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER=none`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`). Off,
the runtime holds None and every hook is one `is None` test: nothing of
OpenTelemetry is even imported.

The exporter is OTLP over HTTP with protobuf (`http/protobuf`, the OpenTelemetry
default for HTTP); `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` is refused at start
rather than ignored. The span model is in `spans.py`.
"""

from __future__ import annotations

import os
import typing

if typing.TYPE_CHECKING:
    from durio.telemetry.spans import Tracing


class TracingConfigError(Exception):
    """Tracing is configured, but cannot be set up (a missing package, an unsupported protocol)."""


def tracing_configured(environ: typing.Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def tracing_from_environment(environ: typing.Mapping[str, str] = os.environ) -> "Tracing | None":
    """The server's tracing as the environment configures it; None when it is off."""
    if not tracing_configured(environ):
        return None
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: durio exports traces over OTLP/HTTP (http/protobuf)"
        )
    try:
        from durio.telemetry.spans import Tracing  # noqa: PLC0415 (OpenTelemetry is imported only when tracing is on)
    except ImportError as exc:
        raise TracingConfigError(
            f"tracing is configured (OTEL_EXPORTER_OTLP_*) but OpenTelemetry is missing: {exc}; pip install 'durio[otel]'"
        ) from None
    return Tracing.from_environment()


__all__ = ["TracingConfigError", "tracing_configured", "tracing_from_environment"]
