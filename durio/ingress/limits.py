"""What one client may hold of a listener: time to send a body, connections, request bytes held at once.

Over a bound durio answers at once rather than waiting or buffering: 408 for a body that
stopped arriving, 429 with Retry-After when the listener's connections or its budget for
request bodies are taken (the ingress's contract already says 429 when overloaded).

hypercorn's own `read_timeout` is not used: it times every read of a connection, so it would
also cut a call that waits minutes for its handler while the client rightly sends nothing.
The body deadline here runs only while a request's body is being received. The request
head is bounded by hypercorn's `h11_max_incomplete_size` (16 KiB, then 431) and in time by
the keep-alive timeout, which runs until a complete head has arrived.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import typing

import anyio

from durio.asgi import HttpError, Receive, Scope, Send, header

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    # A request's body must have arrived this long after its head, plus one second per
    # `body_min_rate` bytes received: a stalled upload is cut off (408), a slow one that keeps
    # moving at that rate is not.
    body_timeout: float = 30.0
    body_min_rate: int = 64 * 1024
    # A response the client stops reading: the connection is closed after this long without progress.
    send_timeout: float = 30.0
    # An idle keep-alive connection, or one still sending its request head, is closed after this long.
    keep_alive_timeout: float = 75.0
    # Connections one listener serves at once; more are answered 429 and closed. None: half of what
    # the process may open (RLIMIT_NOFILE), less room for storage and outgoing requests.
    max_connections: int | None = None
    # Request-body bytes one listener holds at once, across requests, until each request is answered
    # (the per-request limit, 32 MiB on the ingress, still applies). A body that does not fit is 429.
    max_buffered_bytes: int = 128 * MiB

    ENVIRONMENT: typing.ClassVar[dict[str, str]] = {
        "body_timeout": "DURIO_HTTP_BODY_TIMEOUT",
        "body_min_rate": "DURIO_HTTP_BODY_MIN_RATE",
        "send_timeout": "DURIO_HTTP_SEND_TIMEOUT",
        "keep_alive_timeout": "DURIO_HTTP_KEEP_ALIVE_TIMEOUT",
        "max_connections": "DURIO_HTTP_MAX_CONNECTIONS",
        "max_buffered_bytes": "DURIO_HTTP_MAX_BUFFERED_BYTES",
    }

    def __post_init__(self) -> None:
        for name in ("body_timeout", "send_timeout", "keep_alive_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {getattr(self, name)!r}")
        for name in ("body_min_rate", "max_buffered_bytes", "max_connections"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")

    @classmethod
    def from_env(cls, environ: typing.Mapping[str, str] = os.environ) -> "HttpLimits":
        """The defaults, overridden by DURIO_HTTP_* variables; a bad value is a ValueError naming it."""
        values: dict[str, typing.Any] = {}
        for name, variable in cls.ENVIRONMENT.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            kind = float if name.endswith("timeout") else int
            try:
                values[name] = kind(text)
                if not math.isfinite(values[name]):
                    raise ValueError
            except ValueError:
                raise ValueError(f"{variable}={text!r} is not a {'number' if kind is float else 'whole number'}") from None
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"DURIO_HTTP_*: {exc}") from None

    def connections(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return 10_000
        return max(16, min(10_000, (soft - 100) // 2))


def overloaded(message: str) -> HttpError:
    return HttpError(429, message, [(b"retry-after", b"1")])


class BodyGuard:
    """Wraps an ASGI app: each request's body must arrive in time and fit the listener's budget.

    The checks run inside the app's `receive`, so the app answers the HttpError in its own
    error format; the response ends the connection, as the body was not read to its end.
    """

    def __init__(self, app: typing.Any, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits
        self.buffered = 0  # request-body bytes held by the requests in flight; at most limits.max_buffered_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _GuardedBody(self, scope, receive)
        try:
            await self.app(scope, body.receive, send)
        finally:
            self.buffered -= body.held


class _GuardedBody:
    def __init__(self, guard: BodyGuard, scope: Scope, receive: Receive) -> None:
        self._guard = guard
        self._scope = scope
        self._receive = receive
        self._deadline = anyio.current_time() + guard.limits.body_timeout
        self._started = False
        self._complete = False
        self.held = 0  # bytes of this request's body counted in guard.buffered

    async def receive(self) -> dict[str, typing.Any]:
        if self._complete:  # later receives only wait for the disconnect: no deadline
            return await self._receive()
        if not self._started:
            self._started = True
            self._check_announced_length()
        with anyio.CancelScope(deadline=self._deadline):
            message = await self._receive()
            self._take(message)
            return message
        self._release()
        limits = self._guard.limits
        raise HttpError(
            408,
            f"the request body did not arrive in time (it must arrive within {limits.body_timeout:g} s, plus "
            f"1 s per {limits.body_min_rate} bytes received)",
            [(b"connection", b"close")],
        )

    def _check_announced_length(self) -> None:
        """A body announced bigger than what is left of the budget is refused before any of it is read."""
        length = header(self._scope, b"content-length")
        if length is None or not length.isdigit():
            return
        guard = self._guard
        if guard.buffered + int(length) > guard.limits.max_buffered_bytes:
            raise overloaded(self._full_message())

    def _take(self, message: dict[str, typing.Any]) -> None:
        if message["type"] != "http.request":
            return
        chunk = len(message.get("body", b""))
        if chunk:
            guard = self._guard
            if guard.buffered + chunk > guard.limits.max_buffered_bytes:
                self._release()
                raise overloaded(self._full_message())
            guard.buffered += chunk
            self.held += chunk
            self._deadline += chunk / guard.limits.body_min_rate
        if not message.get("more_body", False):
            self._complete = True

    def _release(self) -> None:
        """The body will not be read further and the app drops what it read as it answers the error."""
        self._guard.buffered -= self.held
        self.held = 0

    def _full_message(self) -> str:
        return (
            f"the server holds {self._guard.limits.max_buffered_bytes} bytes of request bodies at most and "
            f"has too little of that left for this one; retry later"
        )
