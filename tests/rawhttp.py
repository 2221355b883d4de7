"""A minimal HTTP/1.1 client on AnyIO sockets, for firing hundreds of concurrent requests.

httpx's connection pool does work per queued request that grows with the
queue, which dominates a test with hundreds of requests in flight; this one
opens one connection per request and does nothing else.
"""

from __future__ import annotations

import json
import typing
import urllib.parse

import anyio


async def request(
    url: str, method: str = "POST", body: typing.Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(url)
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [
        f"{method} {parsed.path}{'?' + parsed.query if parsed.query else ''} HTTP/1.1",
        f"host: {parsed.netloc}",
        "connection: close",
        f"content-length: {len(payload)}",
    ]
    if body is not None:
        lines.append("content-type: application/json")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    stream = await anyio.connect_tcp(parsed.hostname or "127.0.0.1", parsed.port or 80)
    async with stream:
        await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        data = b""
        while True:
            try:
                data += await stream.receive(65536)
            except anyio.EndOfStream:
                break
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, rest
