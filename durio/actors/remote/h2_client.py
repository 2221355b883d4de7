"""An HTTP/2 client on AnyIO for talking to deployments: one full-duplex request per connection.

Restate talks to deployments over HTTP/2 by default (h2c with prior knowledge
for http:// URLs), keeping one request open for a whole attempt: the journal
goes out first, then each notification as it becomes durable, while the
deployment's commands come back on the same stream. HTTP/1.1 cannot do that
(a request body must end before its response is read, in practice), so this
module opens an HTTP/2 connection per exchange with the `h2` state machine
(which hypercorn already brings) and lets the caller send and receive at once.

A connection per attempt costs a TCP and an HTTP/2 handshake (well under a
millisecond on loopback); pooling streams over shared connections is left for
when measurements call for it. Limits apply as in http_client: a connect
timeout, a read timeout on every wait for the peer, an optional total timeout
and an optional bound on the response body.
"""

from __future__ import annotations

import contextlib
import math
import typing

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import anyio
import anyio.abc

from anyio.streams.tls import TLSAttribute

from durio.actors.remote.http_client import HttpClientError, Limits, ResponseTooLarge, _Clock, _split, connect

MAX_CHUNK = 65536


class NotHttp2(HttpClientError):
    """The peer does not speak HTTP/2 with prior knowledge (it answered as an HTTP/1.1 server)."""


class Exchange:
    """One request and its response, both streamed. Use `stream()` to make one."""

    def __init__(self, url: str, socket: anyio.abc.ByteStream, limits: Limits) -> None:
        self.url = url
        self._socket = socket
        self._clock = _Clock(url, limits)
        self._conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="latin-1"))
        self._write_lock = anyio.Lock()
        self._stream_id = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self._response_started = anyio.Event()
        self._window_opened = anyio.Event()
        self._body_send, self._body_receive = anyio.create_memory_object_stream[bytes](math.inf)
        self._error: HttpClientError | None = None
        self._received = 0
        self._request_ended = False
        self._first_bytes = True

    # ------------------------------------------------------------ the connection

    async def _flush(self) -> None:
        data = self._conn.data_to_send()
        if not data:
            return
        async with self._write_lock:
            try:
                await self._clock.send(self._socket, data)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                raise HttpClientError(f"the connection to {self.url} failed: {exc}") from exc

    async def _start(
        self, method: str, path: str, authority: str, headers: dict[str, str], end_stream: bool, scheme: str = "http"
    ) -> None:
        self._conn.initiate_connection()
        self._stream_id = self._conn.get_next_available_stream_id()
        request_headers = [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
        request_headers += [(name.lower(), value) for name, value in headers.items()]
        self._conn.send_headers(self._stream_id, request_headers, end_stream=end_stream)
        self._request_ended = end_stream
        await self._flush()

    async def read_frames(self) -> None:
        """Take what the peer sends until the response ends; failures end the response with the error."""
        try:
            while True:
                try:
                    data = await self._socket.receive(MAX_CHUNK)
                except anyio.EndOfStream:
                    data = b""
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                    raise HttpClientError(f"the connection to {self.url} failed: {exc}") from exc
                if not data:
                    raise HttpClientError(f"{self.url} closed the connection before the response ended")
                if self._first_bytes and data.startswith(b"HTTP/1."):
                    raise NotHttp2(f"{self.url} answered in HTTP/1.1, not HTTP/2")
                self._first_bytes = False
                try:
                    events = self._conn.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    raise HttpClientError(f"{self.url} broke HTTP/2: {exc}") from exc
                ended = False
                for event in events:
                    ended = self._handle(event) or ended
                await self._flush()
                if ended:
                    return
        except HttpClientError as exc:
            self._error = exc
        finally:
            self._response_started.set()
            self._window_opened.set()
            self._body_send.close()

    def _handle(self, event: h2.events.Event) -> bool:
        """Apply one event; True when the response is over."""
        if isinstance(event, h2.events.ResponseReceived) and event.stream_id == self._stream_id:
            headers = {str(k).lower(): str(v) for k, v in event.headers}
            self.status = int(headers.pop(":status", "0"))
            self.headers = headers
            self._response_started.set()
        elif isinstance(event, h2.events.DataReceived) and event.stream_id == self._stream_id:
            self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self._received += len(event.data)
            limit = self._clock.limits.max_response_bytes
            if limit is not None and self._received > limit:
                raise ResponseTooLarge(f"{self.url} answered with more than {limit} bytes")
            if event.data:
                self._body_send.send_nowait(bytes(event.data))
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id == self._stream_id:
            return True
        elif isinstance(event, h2.events.StreamReset) and event.stream_id == self._stream_id:
            raise HttpClientError(f"{self.url} reset the stream (error code {event.error_code})")
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise HttpClientError(f"{self.url} closed the HTTP/2 connection (error code {event.error_code})")
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window_opened.set()
        return False

    # ------------------------------------------------------------ the request

    async def send(self, data: bytes) -> None:
        """Send a piece of the request body, as fast as the peer's flow-control window allows."""
        view = memoryview(data)
        while view:
            if self._error is not None:
                raise self._error
            window = min(self._conn.local_flow_control_window(self._stream_id), self._conn.max_outbound_frame_size)
            if window <= 0:
                self._window_opened = anyio.Event()
                with anyio.CancelScope(deadline=self._clock.deadline(self._clock.limits.read_timeout)) as scope:
                    await self._window_opened.wait()
                if scope.cancelled_caught:
                    raise self._clock.timeout_error("take the request")
                continue
            try:
                self._conn.send_data(self._stream_id, bytes(view[:window]))
            except h2.exceptions.StreamClosedError:
                return  # the peer has already ended the exchange: what is left is not needed
            view = view[window:]
            await self._flush()

    async def end(self) -> None:
        """End the request body: the peer has all of it."""
        if self._request_ended or self._error is not None:
            return
        self._request_ended = True
        try:
            self._conn.end_stream(self._stream_id)
        except h2.exceptions.StreamClosedError:
            return
        await self._flush()

    # ------------------------------------------------------------ the response

    async def response_started(self) -> None:
        """Wait for the response's status and headers."""
        with anyio.CancelScope(deadline=self._clock.deadline(self._clock.limits.read_timeout)) as scope:
            await self._response_started.wait()
        if scope.cancelled_caught:
            raise self._clock.timeout_error("send anything")
        if self._error is not None:
            raise self._error
        if not self.status:
            raise HttpClientError(f"{self.url} ended the stream without a response")

    async def next_chunk(self, timeout: float | None = None) -> bytes | None:
        """The next piece of the response body, None at its end (`timeout`: the read timeout's stand-in)."""
        wait = self._clock.limits.read_timeout if timeout is None else timeout
        with anyio.CancelScope(deadline=self._clock.deadline(wait)) as scope:
            try:
                return await self._body_receive.receive()
            except anyio.EndOfStream:
                if self._error is not None:
                    raise self._error from None
                return None
        assert scope.cancelled_caught
        raise self._clock.timeout_error("send anything")

    async def read_at_most(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size and (chunk := await self.next_chunk()) is not None:
            data += chunk
        return bytes(data[:size])

    async def read(self) -> bytes:
        data = bytearray()
        while (chunk := await self.next_chunk()) is not None:
            data += chunk
        return bytes(data)


@contextlib.contextmanager
def lone_errors() -> typing.Iterator[None]:
    """Let an error raised in a nursery's body out as itself, not in a group of one, so callers catch it by type."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise


@contextlib.asynccontextmanager
async def stream(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    limits: Limits = Limits(),
    end_request: bool = False,
    ca_file: str | None = None,
) -> typing.AsyncIterator[Exchange]:
    """Open an HTTP/2 connection (h2c with prior knowledge, or TLS choosing h2 by ALPN) and start one request on it.

    `end_request`: the request has no body (a GET). The exchange's reader runs until the block ends.
    """
    host, port, path, secure = _split(url)
    socket = await connect(url, limits, ["h2", "http/1.1"], ca_file)
    if secure and socket.extra(TLSAttribute.alpn_protocol, None) != "h2":
        await socket.aclose()
        raise NotHttp2(f"{url}: the TLS handshake did not choose HTTP/2 (ALPN)")
    async with socket:
        exchange = Exchange(url, socket, limits)
        with exchange._body_receive, exchange._body_send:
            await exchange._start(method, path, f"{host}:{port}", headers or {}, end_request, "https" if secure else "http")
            with lone_errors():
                async with anyio.create_task_group() as nursery:
                    nursery.start_soon(exchange.read_frames)
                    try:
                        yield exchange
                    finally:
                        nursery.cancel_scope.cancel()
