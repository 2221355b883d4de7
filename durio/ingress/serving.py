"""Serving ASGI apps over HTTP/1.1 with hypercorn's protocol, driven by a lean AnyIO connection loop.

hypercorn keeps its HTTP and ASGI logic in a sans-IO `protocol` package and
drives it from `hypercorn.trio` with per-event locks and cancel scopes, a
separate socket write for each protocol event (headers and body go out as
two packets), and a new task started for every request to watch the idle
timeout. Profiling a do-nothing ASGI app showed most of its per-request cost
there, not in HTTP parsing or ASGI. So durio keeps hypercorn's protocol —
h11 parsing, ASGI semantics, keep-alive — and drives it itself:

  - one writer task per connection sends whatever the protocol produced in
    one `send_all`, so a response leaves in one packet and streamed bodies
    still flow as they are produced;
  - the idle timeout is the deadline of the read loop's cancel scope, moved
    when the protocol reports the connection idle or busy;
  - no lock: the writer task is the only one writing the socket.

What a client may hold is bounded (durio.ingress.limits): a listener serves at most
`max_connections` at once and answers the next one 429 without reading it; a write the
client stops reading is abandoned after `send_timeout`; request bodies are timed and
budgeted by a BodyGuard around the app.

The loop is AnyIO code (with hypercorn's task group and worker context on AnyIO,
durio.ingress.hypercorn_anyio), so it serves on Trio, asyncio and uvloop alike.
"""

from __future__ import annotations

import logging
import math
import socket
import typing

import anyio
import anyio.abc
from anyio.streams.stapled import MultiListener
from anyio.abc import SocketAttribute
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol import ProtocolWrapper
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from durio.addresses import Address, parse_address
from durio.ingress.hypercorn_anyio import TaskGroup, WorkerContext
from durio.ingress.limits import BodyGuard, HttpLimits

log = logging.getLogger("durio.http")

MAX_RECV = 64 * 1024
HIGH_WATER = 256 * 1024  # a slow reader makes the app wait beyond this much unsent data
SEND_SLICE = 256 * 1024  # the send timeout is per slice: a big response to a slow but reading client goes on
REFUSAL_LINGER = 1.0  # how long a closed or refused connection is read (and dropped) so that the client sees the answer


def hypercorn_config(bind: str, limits: HttpLimits | None = None) -> Config:
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = logging.getLogger("durio.http.hypercorn")
    config.keep_alive_timeout = (limits or HttpLimits()).keep_alive_timeout
    config.graceful_timeout = 2
    config.backlog = 1024
    config.include_server_header = False
    return config


class _Connection:
    """One client connection: reads feed hypercorn's protocol, one task writes what it answers."""

    def __init__(
        self, app: typing.Any, config: Config, context: WorkerContext, stream: anyio.abc.SocketStream, send_timeout: float
    ) -> None:
        self._app = app
        self._config = config
        self._send_timeout = send_timeout
        self._context = context
        self._stream = stream
        self._protocol: ProtocolWrapper
        self._buffer = bytearray()
        self._data_ready = anyio.Event()
        self._drained = anyio.Event()
        self._closing = False
        self._read_scope = anyio.CancelScope()

    async def run(self) -> None:
        try:
            client = self._stream.extra(SocketAttribute.remote_address)[:2]
            server = self._stream.extra(SocketAttribute.local_address)[:2]
        except (OSError, anyio.TypedAttributeLookupError):
            await self._stream.aclose()
            return
        try:
            async with TaskGroup() as task_group:
                self._protocol = ProtocolWrapper(
                    # The context has what HTTP/1.1 uses (no QUIC single tasks).
                    self._app,
                    self._config,
                    typing.cast(typing.Any, self._context),
                    task_group,
                    ConnectionState({}),
                    False,
                    typing.cast(tuple[str, int], client),
                    typing.cast(tuple[str, int], server),
                    self._send,
                    "http/1.1",
                )
                await self._protocol.initiate()
                task_group.spawn(self._write_loop)
                await self._read_loop()
                self._closing = True
                self._data_ready.set()
            await self._linger()
        except OSError:
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    async def _linger(self) -> None:
        """Once this side has sent all and its EOF, drop what the client still sends, for a moment, then close.

        Closing a socket with unread data in it resets the connection, and a reset can destroy the answer
        the client has not read yet: a 413 answered while the rest of the body still arrives. A client that
        read the answer closes its side, which ends this at once.
        """
        with anyio.move_on_after(REFUSAL_LINGER):
            try:
                while True:
                    await self._stream.receive(MAX_RECV)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass

    async def _read_loop(self) -> None:
        self._set_idle(True)
        with self._read_scope:
            while not self._closing:
                try:
                    data = await self._stream.receive(MAX_RECV)
                except anyio.EndOfStream:
                    data = b""
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    break
                await self._protocol.handle(RawData(bytes(data)))
                if not data:
                    break
        await self._protocol.handle(Closed())

    def _set_idle(self, idle: bool) -> None:
        timeout = self._config.keep_alive_timeout
        self._read_scope.deadline = anyio.current_time() + timeout if idle else math.inf

    async def _send(self, event: typing.Any) -> None:
        if isinstance(event, RawData):
            if self._closing:
                return  # the writer has stopped: nothing more will be sent, and nobody would drain it
            if event.data:
                self._buffer += event.data
                self._data_ready.set()
                if len(self._buffer) > HIGH_WATER:
                    self._drained = anyio.Event()
                    await self._drained.wait()
        elif isinstance(event, Closed):
            self._closing = True
            self._data_ready.set()
        elif isinstance(event, Updated):
            self._set_idle(event.idle)

    async def _write_loop(self) -> None:
        while True:
            await self._data_ready.wait()
            self._data_ready = anyio.Event()
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                try:
                    await self._send_all(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError):
                    self._closing = True
            self._drained.set()
            if self._closing:
                self._read_scope.cancel()
                with anyio.CancelScope(shield=True):
                    try:
                        await self._stream.send_eof()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.BusyResourceError, OSError):
                        pass
                return

    async def _send_all(self, data: bytes) -> None:
        """Send it all, each slice within the send timeout (TooSlowError: the client stopped reading)."""
        if len(data) <= SEND_SLICE:
            with anyio.fail_after(self._send_timeout):
                await self._stream.send(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), SEND_SLICE):
            with anyio.fail_after(self._send_timeout):
                await self._stream.send(typing.cast(bytes, view[start : start + SEND_SLICE]))  # any bytes-like is sent


_REFUSAL_BODY = b'{"code":429,"message":"too many connections to this server; retry later"}'
REFUSAL = (
    b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)


async def _refuse(stream: anyio.abc.SocketStream) -> None:
    """Answer 429 without parsing the request, then close (reading a little first, so the client is not reset)."""
    with anyio.move_on_after(REFUSAL_LINGER):
        try:
            await stream.send(REFUSAL)
            await stream.send_eof()
            while await stream.receive(MAX_RECV):
                pass
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            pass
    await stream.aclose()


async def serve_http(
    app: typing.Any,
    bind: str,
    limits: HttpLimits | None = None,
    *,
    sock: socket.socket | None = None,
    share: ConnectionShare | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app on `bind` (see durio.addresses); hands back the URL it listens on (useful with port 0).

    `sock`: a listening socket to accept from instead, shared with sibling worker processes; `share` keeps
    the connections spread evenly over them."""
    limits = limits or HttpLimits()
    address = parse_address(bind)
    config = hypercorn_config(str(address), limits)
    shared: anyio.abc.SocketListener | None = None
    if sock is None:
        listener = await anyio.create_tcp_listener(local_host=address.host, local_port=address.port, backlog=config.backlog)
    else:
        shared = await anyio.abc.SocketListener.from_socket(sock)
        listener = MultiListener([shared])
    wrapped = wrap_app(typing.cast(typing.Any, BodyGuard(app, limits)), config.wsgi_max_body_size, None)
    context = WorkerContext(None)
    url = f"http://{Address(*listener.listeners[0].extra(SocketAttribute.local_address)[:2])}"
    max_connections = limits.connections()
    connections = 0  # open connections served; at most max_connections

    async def handle(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        if connections >= max_connections:
            await _refuse(stream)
            return
        connections += 1
        if share is not None:
            share.opened()
        try:
            await _Connection(wrapped, config, context, stream, limits.send_timeout).run()
        finally:
            connections -= 1
            if share is not None:
                share.closed()

    task_status.started(url)
    try:
        async with listener:
            if shared is None or share is None:
                await listener.serve(handle)
            else:
                async with anyio.create_task_group() as handlers:
                    while True:
                        await share.before_accept()
                        handlers.start_soon(handle, await shared.accept())
    finally:
        await context.terminated.set()


class ConnectionShare(typing.Protocol):
    """This process's part of the connections a listening socket shared with sibling processes takes."""

    def opened(self) -> None: ...
    def closed(self) -> None: ...
    async def before_accept(self) -> None: ...
