"""Just enough HTTP/1.1 for a load generator: encode requests, split a byte stream into responses.

Hand-written rather than h11 because h11 costs tens of microseconds per
message in pure Python, which would cap the client below the servers it
measures. This parser handles what the servers under test send —
Content-Length bodies, chunked bodies, `Connection: close` — and nothing fancy
(no trailers kept, no 1xx responses, no pipelining on our side).
"""

from __future__ import annotations

from dataclasses import dataclass


class ProtocolError(Exception):
    """The server sent something that is not an HTTP/1.1 response we understand."""


@dataclass(slots=True)
class Response:
    status: int
    head: bytes  # status line and headers, as received (for debugging and header lookups)
    body: bytes
    keep_alive: bool

    def header(self, name: bytes) -> bytes | None:
        """The first header called `name` (lower-case), or None."""
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None


def encode_request(method: str, path: str, host: str, body: bytes | None, content_type: bytes = b"application/json") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"host: " + host.encode()]
    if body is not None:
        lines.append(b"content-type: " + content_type)
        lines.append(b"content-length: " + str(len(body)).encode())
    elif method in ("POST", "PUT", "PATCH"):
        lines.append(b"content-length: 0")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


class ResponseReader:
    """Feed it bytes from the socket; it hands back each complete response.

    State lives between feeds because a response may arrive in many pieces
    (or several in one piece, though we never pipeline).
    """

    __slots__ = ("_buffer", "_head", "_status", "_keep_alive", "_length", "_chunked")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._reset()

    def _reset(self) -> None:
        self._head: bytes | None = None
        self._status = 0
        self._keep_alive = True
        self._length = -1
        self._chunked = False

    def feed(self, data: bytes) -> list[Response]:
        self._buffer += data
        responses = []
        while True:
            response = self._next()
            if response is None:
                return responses
            responses.append(response)

    def _next(self) -> Response | None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65536:
                    raise ProtocolError("response head larger than 64 KiB")
                return None
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            self._parse_head(head)
        if self._chunked:
            body = self._take_chunked()
            if body is None:
                return None
        else:
            if len(buffer) < self._length:
                return None
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
        assert self._head is not None
        response = Response(self._status, self._head, body, self._keep_alive)
        self._reset()
        return response

    def _parse_head(self, head: bytes) -> None:
        status_line, _, _ = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line[:80]!r}")
        self._head = head
        self._status = int(parts[1])
        self._keep_alive = parts[0] == b"HTTP/1.1"
        self._length = 0  # no Content-Length and not chunked: an empty body (we never read to EOF)
        lowered = head.lower()
        position = lowered.find(b"\r\ncontent-length:")
        if position >= 0:
            end = lowered.find(b"\r\n", position + 2)
            self._length = int(lowered[position + 17 : end if end >= 0 else None])
        if b"\r\ntransfer-encoding:" in lowered and b"chunked" in lowered:
            self._chunked = True
        position = lowered.find(b"\r\nconnection:")
        if position >= 0:
            end = lowered.find(b"\r\n", position + 2)
            value = lowered[position + 13 : end if end >= 0 else None].strip()
            self._keep_alive = value != b"close" if self._keep_alive else value == b"keep-alive"
        if self._status in (204, 304) or 100 <= self._status < 200:
            self._length, self._chunked = 0, False

    def _take_chunked(self) -> bytes | None:
        """The whole de-chunked body once every chunk and the trailer are buffered, else None."""
        buffer = self._buffer
        body = bytearray()
        position = 0
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            position = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", position)
                # Skip trailer lines until the empty line that ends the message.
                while trailer_end > position:
                    position = trailer_end + 2
                    trailer_end = buffer.find(b"\r\n", position)
                if trailer_end < 0:
                    return None
                del buffer[: trailer_end + 2]
                return bytes(body)
            if len(buffer) < position + size + 2:
                return None
            body += buffer[position : position + size]
            position += size + 2
