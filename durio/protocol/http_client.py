"""A small HTTP/1.1 client on Trio, built on h11 (which hypercorn already brings).

Enough for discovery and for invoking deployments in request/response mode:
one connection per request, the request body sent whole, the response body
streamed back chunk by chunk.
"""

from __future__ import annotations

import contextlib
import typing
import urllib.parse

import h11
import trio

MAX_CHUNK = 65536


class HttpClientError(Exception):
    """The endpoint could not be reached or broke HTTP."""


class Response:
    def __init__(self, status: int, headers: dict[str, str], conn: h11.Connection, stream: trio.SocketStream) -> None:
        self.status = status
        self.headers = headers
        self._conn = conn
        self._stream = stream

    async def iter_body(self) -> typing.AsyncIterator[bytes]:
        while True:
            try:
                event = self._conn.next_event()
                if event is h11.NEED_DATA:
                    data = await self._stream.receive_some(MAX_CHUNK)
                    self._conn.receive_data(data)
                    continue
            except h11.ProtocolError as exc:
                raise HttpClientError(f"the response broke HTTP/1.1: {exc}") from exc
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise HttpClientError(f"the connection failed while reading the response: {exc}") from exc
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_body()])


def _split(url: str) -> tuple[str, int, str]:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise HttpClientError(f"{url!r} is not an http:// URL (durio speaks plain HTTP/1.1 to deployments)")
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return parsed.hostname, parsed.port or 80, path


@contextlib.asynccontextmanager
async def request(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"", connect_timeout: float = 10.0
) -> typing.AsyncIterator[Response]:
    host, port, path = _split(url)
    try:
        with trio.fail_after(connect_timeout):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise HttpClientError(f"cannot connect to {host}:{port}: {exc or 'timed out'}") from exc
    async with stream:
        conn = h11.Connection(our_role=h11.CLIENT)
        request_headers = [("host", f"{host}:{port}"), ("content-length", str(len(body))), ("connection", "close")]
        request_headers += list((headers or {}).items())
        try:
            await stream.send_all(conn.send(h11.Request(method=method, target=path, headers=request_headers)))
            if body:
                await stream.send_all(conn.send(h11.Data(data=body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(MAX_CHUNK)
                    conn.receive_data(data)
                    if not data and conn.their_state is h11.SEND_RESPONSE:
                        raise HttpClientError(f"{url} closed the connection without answering")
                    continue
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    response_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                    yield Response(event.status_code, response_headers, conn, stream)
                    return
                raise HttpClientError(f"{url} answered with {event!r} instead of a response")
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HttpClientError(f"the connection to {url} failed: {exc}") from exc
        except h11.ProtocolError as exc:
            raise HttpClientError(f"{url} broke HTTP/1.1: {exc}") from exc
