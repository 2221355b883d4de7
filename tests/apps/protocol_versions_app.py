"""durio services served as a remote deployment (`durio.app`), for the protocol-version tests.

`hypercorn --worker-class trio tests.apps.protocol_versions_app:app` serves them as durio
ships them (service protocol V5 and V6). `...:v5_only_app` serves the same services behind
a wrapper that advertises protocol V5 at most and answers 415 to any invocation that is not
V5, so that a server can only run them by speaking V5.
"""

from __future__ import annotations

import json
from datetime import timedelta

import durio as restate

versions = restate.Service("Versions")


@versions.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"hello {name}"


@versions.handler()
async def refuse(ctx: restate.Context) -> str:
    raise restate.TerminalError("refused", 422, metadata={"reason": "policy"})


@versions.handler()
async def nap(ctx: restate.Context, ms: int) -> str:
    await ctx.sleep(timedelta(milliseconds=ms))
    return f"napped {ms}"


services = [versions]
app = restate.app(services)

V5 = b"application/vnd.restate.invocation.v5"


async def v5_only_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    path = scope["path"]
    if "/invoke/" in path and dict(scope["headers"]).get(b"content-type") != V5:
        await send({"type": "http.response.start", "status": 415, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"this endpoint speaks protocol V5 only"})
        return
    if not path.endswith("/discover"):
        await app(scope, receive, send)
        return
    # durio's manifest, with maxProtocolVersion lowered to 5.
    start: dict = {}
    body = bytearray()

    async def capture(message):  # type: ignore[no-untyped-def]
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            body.extend(message.get("body", b""))

    await app(scope, receive, capture)
    manifest = json.loads(body)
    manifest["maxProtocolVersion"] = 5
    rewritten = json.dumps(manifest).encode()
    headers = [(k, v) for k, v in start["headers"] if k != b"content-length"] + [
        (b"content-length", str(len(rewritten)).encode())
    ]
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": rewritten})
