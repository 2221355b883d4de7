"""A misbehaving endpoint: each protocol error becomes a clear, retried invocation failure; durio stays up."""

from __future__ import annotations

import json
import struct

import pytest
import trio

import durio as restate
from durio.ingress.serving import serve_http
from durio.protocol import messages as m
from durio.protocol.framing import encode
from tests.conftest import start_in_process, wait_until

INVOCATION_V6 = b"application/vnd.restate.invocation.v6"
MANIFEST = {
    "protocolMode": "REQUEST_RESPONSE", "minProtocolVersion": 5, "maxProtocolVersion": 6,
    "services": [{"name": "Broken", "ty": "SERVICE", "handlers": [
        {"name": name, "input": {}, "output": {"contentType": "application/json"}}
        for name in ("bad_frame", "unknown_type", "wrong_content_type", "server_error", "no_end", "error_message")
    ]}],
}


async def misbehaving_endpoint(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """An ASGI app that discovers fine and then breaks the protocol in the way its handler names."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    path = scope["path"]
    if path.endswith("/discover"):
        body = json.dumps(MANIFEST).encode()
        headers = [(b"content-type", b"application/vnd.restate.endpointmanifest.v3+json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    handler = path.rsplit("/", 1)[1]
    status, content_type, body = 200, INVOCATION_V6, b""
    if handler == "bad_frame":
        body = struct.pack(">HHI", 0x0411, 0, 5) + b"\xff\xff\xff\xff\xff"
    elif handler == "unknown_type":
        body = struct.pack(">HHI", 0x0999, 0, 0)
    elif handler == "wrong_content_type":
        content_type = b"text/plain"
        body = b"hello"
    elif handler == "server_error":
        status = 500
        body = b"the endpoint is on fire"
    elif handler == "error_message":
        body = encode(m.ERROR, m.MESSAGES["ErrorMessage"](code=503, message="database unavailable", next_retry_delay=50))
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


healthy = restate.Service("Healthy")


@healthy.handler()
async def ping(ctx: restate.Context) -> str:
    return "pong"


@pytest.fixture
async def setup(nursery, data_dir):  # type: ignore[no-untyped-def]
    server = await start_in_process(nursery, [healthy], data_dir)
    endpoint_scope = trio.CancelScope()

    async def run_endpoint(task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        with endpoint_scope:
            await serve_http(misbehaving_endpoint, "127.0.0.1:0", task_status=task_status)

    url = await nursery.start(run_endpoint)
    response = await server.admin.post("/deployments", json={"uri": url})
    assert response.status_code == 201, response.text
    return server, endpoint_scope


EXPECTED = {
    "bad_frame": ["does not decode"],
    "unknown_type": ["unknown message type 0x0999"],
    "wrong_content_type": ["content type 'text/plain'"],
    "server_error": ["answered 500", "on fire"],
    "no_end": ["without End, Suspension or Error"],
    "error_message": ["database unavailable"],
}


@pytest.mark.parametrize("handler", list(EXPECTED))
async def test_a_protocol_error_is_a_clear_retried_failure(setup, handler: str) -> None:
    server, _ = setup
    sent = await server.ingress.post(f"/restate/send/Broken/{handler}")
    invocation_id = sent.json()["invocationId"]

    async def retried_twice() -> bool:
        view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
        return view["retry_count"] >= 2

    await wait_until(retried_twice)
    view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    assert view["status"] in ("backing-off", "running")
    for fragment in EXPECTED[handler]:
        assert fragment in view["last_failure"]["message"], view["last_failure"]
    assert (await server.ingress.post("/restate/call/Healthy/ping")).json() == "pong"
    assert (await server.ingress.get("/restate/health")).status_code == 200


async def test_an_endpoint_that_is_down_is_retried_until_it_comes_back(setup) -> None:
    server, endpoint_scope = setup
    endpoint_scope.cancel()
    await trio.sleep(0.1)
    sent = await server.ingress.post("/restate/send/Broken/no_end")
    invocation_id = sent.json()["invocationId"]

    async def failing() -> bool:
        view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
        return view["retry_count"] >= 2

    await wait_until(failing)
    failure = (await server.admin.get(f"/invocations/{invocation_id}")).json()["last_failure"]
    assert "cannot connect" in failure["message"] and failure["code"] == 503
    assert (await server.ingress.post("/restate/call/Healthy/ping")).json() == "pong"


async def test_registering_an_endpoint_that_is_not_there_is_a_clear_400(setup) -> None:
    server, _ = setup
    response = await server.admin.post("/deployments", json={"uri": "http://127.0.0.1:1"})
    assert response.status_code == 400 and "cannot discover" in response.json()["message"]
    bad = await server.admin.post("/deployments", json={"url": "x"})
    assert bad.status_code == 400
