"""Small ASGI helpers shared by durio's ASGI apps (ingress, admin, endpoint): bodies, JSON, errors.

durio's apps are plain ASGI callables (no framework): every request on the
ingress hot path goes through a handful of dict lookups, not a router with
middleware.

A leaf at the top of the package, not in ingress/: durio.app's endpoint (durio.protocol.endpoint)
serves ASGI too, and the protocol layer imports nothing from the ingress above it.
"""

from __future__ import annotations

import json
import typing
from urllib.parse import unquote_to_bytes

Scope = dict[str, typing.Any]
Receive = typing.Callable[[], typing.Awaitable[dict[str, typing.Any]]]
Send = typing.Callable[[dict[str, typing.Any]], typing.Awaitable[None]]

JSON = b"application/json"


class HttpError(Exception):
    """Answer the request with this status and a JSON error body."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class BodyTooLarge(HttpError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than `limit` bytes without reading them all."""
    length = header(scope, b"content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise BodyTooLarge(limit)
        except ValueError:
            raise HttpError(400, f"bad content-length header: {length.decode('latin-1')!r}") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(499, "the client closed the connection")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def path_segments(scope: Scope) -> list[str]:
    """The path split on '/', each segment percent-decoded (so a key may contain an encoded '/')."""
    raw = scope.get("raw_path") or scope["path"].encode()
    raw = raw.split(b"?", 1)[0]
    segments = []
    for part in raw.split(b"/")[1:]:
        try:
            segments.append(unquote_to_bytes(part).decode("utf-8"))
        except UnicodeDecodeError:
            raise HttpError(400, "the path is not valid UTF-8 once percent-decoded") from None
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    return segments


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes | None = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    response_headers = list(headers or ())
    if body and content_type is not None:
        response_headers.append((b"content-type", content_type))
    response_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def dumps(value: typing.Any) -> bytes:
    # ASCII escapes: whatever a stored value holds (a lone surrogate included) can be answered. Never NaN or
    # Infinity, which are not JSON: stored values reach views through serde.loads, which refuses them.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


async def respond_json(send: Send, status: int, value: typing.Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, status, dumps(value), JSON, headers)


async def drain(receive: Receive) -> None:
    """Consume an unread request body, so the connection can be reused."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer the server's lifespan events: durio's apps have nothing to set up or tear down."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
