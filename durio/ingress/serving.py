"""Serving ASGI apps over HTTP/1.1 with hypercorn's protocol, driven by a lean Trio connection loop.

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
"""

from __future__ import annotations

import logging
import math
import typing

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol import ProtocolWrapper
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from durio.addresses import Address, parse_address

log = logging.getLogger("durio.http")

MAX_RECV = 64 * 1024
HIGH_WATER = 256 * 1024  # a slow reader makes the app wait beyond this much unsent data


def hypercorn_config(bind: str) -> Config:
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = logging.getLogger("durio.http.hypercorn")
    config.keep_alive_timeout = 75
    config.graceful_timeout = 2
    config.backlog = 1024
    config.include_server_header = False
    return config


class _Connection:
    """One client connection: reads feed hypercorn's protocol, one task writes what it answers."""

    def __init__(self, app: typing.Any, config: Config, context: WorkerContext, stream: trio.SocketStream) -> None:
        self._app = app
        self._config = config
        self._context = context
        self._stream = stream
        self._protocol: ProtocolWrapper
        self._buffer = bytearray()
        self._data_ready = trio.Event()
        self._drained = trio.Event()
        self._closing = False
        self._read_scope = trio.CancelScope()

    async def run(self) -> None:
        socket = self._stream.socket
        try:
            client, server = socket.getpeername()[:2], socket.getsockname()[:2]
        except OSError:
            await self._stream.aclose()
            return
        try:
            async with TaskGroup() as task_group:
                self._protocol = ProtocolWrapper(
                    self._app, self._config, self._context, task_group, ConnectionState({}), False,
                    client, server, self._send, "http/1.1",
                )
                await self._protocol.initiate()
                task_group.spawn(self._write_loop)
                await self._read_loop()
                self._closing = True
                self._data_ready.set()
        except OSError:
            pass
        finally:
            with trio.CancelScope(shield=True):
                await self._stream.aclose()

    async def _read_loop(self) -> None:
        self._set_idle(True)
        with self._read_scope:
            while not self._closing:
                try:
                    data = await self._stream.receive_some(MAX_RECV)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                await self._protocol.handle(RawData(bytes(data)))
                if not data:
                    break
        await self._protocol.handle(Closed())

    def _set_idle(self, idle: bool) -> None:
        timeout = self._config.keep_alive_timeout
        self._read_scope.deadline = trio.current_time() + timeout if idle else math.inf

    async def _send(self, event: typing.Any) -> None:
        if isinstance(event, RawData):
            if event.data:
                self._buffer += event.data
                self._data_ready.set()
                if len(self._buffer) > HIGH_WATER:
                    self._drained = trio.Event()
                    await self._drained.wait()
        elif isinstance(event, Closed):
            self._closing = True
            self._data_ready.set()
        elif isinstance(event, Updated):
            self._set_idle(event.idle)

    async def _write_loop(self) -> None:
        while True:
            await self._data_ready.wait()
            self._data_ready = trio.Event()
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._closing = True
            self._drained.set()
            if self._closing:
                self._read_scope.cancel()
                with trio.CancelScope(shield=True):
                    try:
                        await self._stream.send_eof()
                    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                        pass
                return


async def serve_http(app: typing.Any, bind: str, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve an ASGI app on `bind` (see durio.addresses); hands back the URL it listens on (useful with port 0)."""
    address = parse_address(bind)
    config = hypercorn_config(str(address))
    listeners = await trio.open_tcp_listeners(address.port, host=address.host, backlog=config.backlog)
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    context = WorkerContext(None)
    url = f"http://{Address(*listeners[0].socket.getsockname()[:2])}"

    async def handle(stream: trio.SocketStream) -> None:
        await _Connection(wrapped, config, context, stream).run()

    task_status.started(url)
    try:
        await trio.serve_listeners(handle, listeners)
    finally:
        await context.terminated.set()
