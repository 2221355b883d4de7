"""bench_services.py as a remote deployment: `durio.app(services)` on hypercorn's Trio worker, behind a
wrapper that counts what crosses it.

    python benchmarks/remote_deployment.py 127.0.0.1:PORT

remote_modes.py starts this and registers it with a `durio server`. The wrapper
counts, per request path (`/discover`, `/invoke/Steps/run`, ...) and HTTP version,
the requests and the bytes of their bodies both ways (the service protocol's
frames: what durio sends and what the deployment answers, without HTTP/2 frame or
header overhead). `GET /bench/counters` answers the totals as JSON; it is served by
the wrapper and not counted. Nothing else changes: the app, its mode (BIDI_STREAM
when discovered over HTTP/2, REQUEST_RESPONSE over HTTP/1.1) and hypercorn's
settings are what a user of `durio.app` gets, with the SDK docs' production
settings (the ones compare.py gives restate-sdk).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import typing

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import durio  # noqa: E402
from compare import HYPERCORN_SETTINGS  # noqa: E402
from durio_app import services  # noqa: E402  (bench_services.py with durio as `restate`)

COUNTERS_PATH = "/bench/counters"

Scope = dict[str, typing.Any]
Message = dict[str, typing.Any]
Receive = typing.Callable[[], typing.Awaitable[Message]]
Send = typing.Callable[[Message], typing.Awaitable[None]]


class ByteCounter:
    """ASGI middleware: per (path, HTTP version), requests and request/response body bytes."""

    def __init__(self, app: typing.Any) -> None:
        self.app = app
        self.paths: dict[str, dict[str, int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == COUNTERS_PATH:
            await self._answer_counters(send)
            return
        tally = self.paths.setdefault(
            f"{scope['path']} HTTP/{scope.get('http_version', '?')}", {"requests": 0, "request_bytes": 0, "response_bytes": 0}
        )
        tally["requests"] += 1

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                tally["request_bytes"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                tally["response_bytes"] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, counting_receive, counting_send)

    async def _answer_counters(self, send: Send) -> None:
        body = json.dumps(self.paths).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    config = Config()
    config.bind = [sys.argv[1]]
    config.accesslog = None
    for name, value in HYPERCORN_SETTINGS.items():
        setattr(config, name, value)
    print(f"bench_services as a deployment on http://{sys.argv[1]} (hypercorn, trio worker)", flush=True)
    app: typing.Any = ByteCounter(durio.app(typing.cast(typing.Any, services)))  # hypercorn's ASGI types are narrower
    trio.run(functools.partial(serve, app, config))


if __name__ == "__main__":
    main()
