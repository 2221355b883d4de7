"""The W3C trace context of an invocation, derived without OpenTelemetry (the SQL tables and the UI use it too).

An invocation's span is exported when the invocation completes, but its
children (attempts, steps, the invocations it calls) are exported before that,
so its ids must be known from the start and survive restarts. Like Restate,
durio derives them from the invocation id: the span id always, and the trace id
too when the invocation came without a `traceparent` (then its span is a root).
With one, the invocation's span continues that trace, as a child of that span.
"""

from __future__ import annotations

import hashlib
import re
import typing

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Parent(typing.NamedTuple):
    trace_id: int
    span_id: int
    sampled: bool


def parse_traceparent(value: str) -> Parent | None:
    """A valid W3C traceparent (version 00), or None."""
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return Parent(trace_id, span_id, bool(int(match.group(3), 16) & 1))


def traceparent_in(headers: typing.Iterable[tuple[str, str]]) -> Parent | None:
    for name, value in headers:
        if name.lower() == "traceparent":
            return parse_traceparent(value)
    return None


def invocation_ids(invocation_id: str, headers: typing.Iterable[tuple[str, str]]) -> tuple[int, int, Parent | None]:
    """(trace id, the invocation span's id, the parent from the invocation's own headers or None)."""
    digest = hashlib.sha256(b"durio invocation span " + invocation_id.encode()).digest()
    parent = traceparent_in(headers)
    trace_id = parent.trace_id if parent is not None else (int.from_bytes(digest[:16], "big") or 1)
    return trace_id, int.from_bytes(digest[16:24], "big") or 1, parent


def trace_id_hex(invocation_id: str, headers: typing.Iterable[tuple[str, str]]) -> str:
    return f"{invocation_ids(invocation_id, headers)[0]:032x}"


def format_traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"
