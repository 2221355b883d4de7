"""A small HTTP/1.1 client on AnyIO, built on h11 (which hypercorn already brings).

Enough for discovery and for invoking deployments in request/response mode:
one connection per request (TLS for https://, verified against the system's
CAs and an optional CA file), the request body sent whole, the response body
streamed back chunk by chunk.

Every request runs under Limits: a connect timeout, a read timeout (the longest
wait for the peer to take or give anything), an optional total timeout and an
optional bound on the response body, checked as it arrives, so a peer that
never answers or answers without end costs a bounded time and memory. The
response head is bounded by h11 (16 KiB). Nothing is retried or redirected here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import ssl
import typing
import urllib.parse

import h11
import anyio
import anyio.abc

MAX_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10.0
    # The longest the peer may take to accept a slice of the request or to send anything back.
    read_timeout: float = 30.0
    # The whole exchange, body included; None: as long as the peer keeps making progress.
    total_timeout: float | None = None
    # The response body's size; None: unbounded (the caller consumes it as it arrives).
    max_response_bytes: int | None = None


class HttpClientError(Exception):
    """The endpoint could not be reached or broke HTTP."""


class HttpTimeout(HttpClientError):
    """The endpoint did not answer (or take the request) in time."""


class ResponseTooLarge(HttpClientError):
    """The response body is larger than Limits.max_response_bytes; the rest was not read."""


class _Clock:
    """The deadlines of one exchange."""

    def __init__(self, url: str, limits: Limits) -> None:
        self.url = url
        self.limits = limits
        self.end = math.inf if limits.total_timeout is None else anyio.current_time() + limits.total_timeout

    def deadline(self, timeout: float) -> float:
        return min(anyio.current_time() + timeout, self.end)

    def timeout_error(self, waiting_for: str) -> HttpTimeout:
        if anyio.current_time() >= self.end:
            return HttpTimeout(f"{self.url} did not finish answering within {self.limits.total_timeout:g} s")
        return HttpTimeout(f"{self.url} did not {waiting_for} for {self.limits.read_timeout:g} s")

    async def receive(self, stream: anyio.abc.ByteStream) -> bytes:
        data = None
        with anyio.CancelScope(deadline=self.deadline(self.limits.read_timeout)):
            try:
                data = await stream.receive(MAX_CHUNK)
            except anyio.EndOfStream:
                data = b""
        if data is None:
            raise self.timeout_error("send anything")
        return data

    async def send(self, stream: anyio.abc.ByteStream, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), MAX_CHUNK):
            with anyio.CancelScope(deadline=self.deadline(self.limits.read_timeout)) as scope:
                await stream.send(typing.cast(bytes, view[start : start + MAX_CHUNK]))  # any bytes-like is sent
            if scope.cancelled_caught:
                raise self.timeout_error("take the request")


class Response:
    def __init__(
        self, status: int, reason: str, headers: dict[str, str], conn: h11.Connection, stream: anyio.abc.ByteStream, clock: _Clock
    ) -> None:
        self.status = status
        self.reason = reason  # the status line's reason phrase, as the peer sent it
        self.headers = headers
        self._conn = conn
        self._stream = stream
        self._clock = clock
        self._received = 0

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body, None at its end."""
        limit = self._clock.limits.max_response_bytes
        while True:
            try:
                event = self._conn.next_event()
                if event is h11.NEED_DATA:
                    data = await self._clock.receive(self._stream)
                    self._conn.receive_data(data)
                    continue
            except h11.ProtocolError as exc:
                raise HttpClientError(f"the response broke HTTP/1.1: {exc}") from exc
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                raise HttpClientError(f"the connection failed while reading the response: {exc}") from exc
            if isinstance(event, h11.Data):
                self._received += len(event.data)
                if limit is not None and self._received > limit:
                    raise ResponseTooLarge(f"{self._clock.url} answered with more than {limit} bytes")
                return bytes(event.data)
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return None

    async def iter_body(self) -> typing.AsyncIterator[bytes]:
        while (chunk := await self.next_chunk()) is not None:
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_body()])

    async def read_at_most(self, size: int) -> bytes:
        """The body's first `size` bytes; the rest is left unread (close the response after this)."""
        data = bytearray()
        while len(data) < size and (chunk := await self.next_chunk()) is not None:
            data += chunk
        return bytes(data[:size])


def _split(url: str) -> tuple[str, int, str, bool]:
    """(host, port, path, secure): an http:// or https:// URL's parts."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise HttpClientError(f"{url!r} is not an http:// or https:// URL")
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    secure = parsed.scheme == "https"
    return parsed.hostname, parsed.port or (443 if secure else 80), path, secure


def tls_context(alpn: list[str], ca_file: str | None = None) -> ssl.SSLContext:
    """A client TLS context that verifies the peer against the system's CAs, plus `ca_file`'s if given."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    context.set_alpn_protocols(alpn)
    return context


async def connect(url: str, limits: Limits, alpn: list[str], ca_file: str | None = None) -> anyio.abc.ByteStream:
    """A connection to `url`'s host, over TLS (verified, offering `alpn`) for https://."""
    host, port, _, secure = _split(url)
    clock = _Clock(url, limits)
    stream: anyio.abc.ByteStream | None = None
    with anyio.CancelScope(deadline=clock.deadline(limits.connect_timeout)):
        try:
            if secure:
                # Not standard-compatible: HTTP frames its own messages, and a peer that closes without the TLS
                # closing handshake (many do) must not turn a finished exchange into an error.
                stream = await anyio.connect_tcp(
                    host, port, tls=True, ssl_context=tls_context(alpn, ca_file), tls_hostname=host, tls_standard_compatible=False
                )
            else:
                stream = await anyio.connect_tcp(host, port)
        except OSError as exc:  # ssl.SSLError (a certificate that does not verify) is one too
            raise HttpClientError(f"cannot connect to {host}:{port}: {exc}") from exc
    if stream is None:
        raise HttpTimeout(f"cannot connect to {host}:{port}: no connection within {limits.connect_timeout:g} s")
    return stream


@contextlib.asynccontextmanager
async def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    limits: Limits = Limits(),
    ca_file: str | None = None,
) -> typing.AsyncIterator[Response]:
    host, port, path, _ = _split(url)
    clock = _Clock(url, limits)
    stream = await connect(url, limits, ["http/1.1"], ca_file)
    async with stream:
        conn = h11.Connection(our_role=h11.CLIENT)
        request_headers = [("host", f"{host}:{port}"), ("content-length", str(len(body))), ("connection", "close")]
        request_headers += list((headers or {}).items())
        try:
            await clock.send(stream, conn.send(h11.Request(method=method, target=path, headers=request_headers)))
            if body:
                await clock.send(stream, conn.send(h11.Data(data=body)))
            await clock.send(stream, conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await clock.receive(stream)
                    conn.receive_data(data)
                    if not data and conn.their_state is h11.SEND_RESPONSE:
                        raise HttpClientError(f"{url} closed the connection without answering")
                    continue
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    response_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                    yield Response(event.status_code, event.reason.decode("latin-1"), response_headers, conn, stream, clock)
                    return
                raise HttpClientError(f"{url} answered with {event!r} instead of a response")
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise HttpClientError(f"the connection to {url} failed: {exc}") from exc
        except h11.LocalProtocolError as exc:
            raise HttpClientError(f"durio cannot send this request to {url}: {exc}") from exc
        except h11.ProtocolError as exc:
            raise HttpClientError(f"{url} broke HTTP/1.1: {exc}") from exc
