"""A misbehaving endpoint: each protocol error becomes a clear, retried invocation failure; durio stays up.
And the protocol versions: durio's endpoint (`durio.app`) answers V5 and V6 in kind and refuses others with 415;
a durio server speaks V5 to an endpoint that goes no higher."""

from __future__ import annotations

import json
import pathlib
import struct
import time

import httpx
import pytest
import anyio

import durio as restate
from durio import ids
from durio.ingress.serving import serve_http
from durio.protocol import messages as m
from durio.protocol.framing import Frame, FrameDecoder, encode
from tests.conftest import start_in_process, wait_until
from tests.remote_peers import hypercorn_deployment

INVOCATION_V6 = b"application/vnd.restate.invocation.v6"
MANIFEST = {
    "protocolMode": "REQUEST_RESPONSE",
    "minProtocolVersion": 5,
    "maxProtocolVersion": 6,
    "services": [
        {
            "name": "Broken",
            "ty": "SERVICE",
            "handlers": [
                {"name": name, "input": {}, "output": {"contentType": "application/json"}}
                for name in ("bad_frame", "unknown_type", "wrong_content_type", "server_error", "no_end", "error_message")
            ],
        }
    ],
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
    endpoint_scope = anyio.CancelScope()

    async def run_endpoint(task_status=anyio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
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
    await anyio.sleep(0.1)
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


# ---------------------------------------------------------------- protocol versions

M = m.MESSAGES
INPUT, OUTPUT, SLEEP = (
    m.COMMAND_TYPE_IDS[name] for name in ("InputCommandMessage", "OutputCommandMessage", "SleepCommandMessage")
)


@pytest.fixture
async def versions_endpoint(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    """tests/apps/protocol_versions_app.py's `durio.app`, served by hypercorn (Trio worker) on a loopback port."""
    peer = hypercorn_deployment("tests.apps.protocol_versions_app:app", tmp_path / "versions.log", trio_worker=True)
    await peer.start(ready_path="/health")
    yield peer
    peer.stop()


def invocation_body(version: int, input_value: bytes, *replayed: tuple[int, object]) -> bytes:
    """A request as a Restate server sends it: a StartMessage, the InputCommand, then the rest of the journal."""
    invocation_id = ids.new_invocation_id()
    start = M["StartMessage"](
        id=ids.invocation_id_to_bytes(invocation_id), debug_id=invocation_id, known_entries=1 + len(replayed)
    )
    if version >= 6:
        start.random_seed = 42  # a V6 field
    body = encode(m.START, start) + encode(INPUT, M["InputCommandMessage"](value=M["Value"](content=input_value)))
    for type_id, message in replayed:
        body += encode(type_id, message)
    return body


async def invoke_endpoint(endpoint, handler: str, content_type: str, body: bytes) -> tuple[httpx.Response, list[Frame]]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{endpoint.url}/invoke/Versions/{handler}", content=body, headers={"content-type": content_type}
        )
    if response.status_code != 200:
        return response, []
    decoder = FrameDecoder()
    frames = decoder.feed(response.content)
    assert decoder.pending_bytes == 0, "the response ends with a partial frame"
    return response, frames


def content_type_of(version: int) -> str:
    return f"application/vnd.restate.invocation.v{version}"


@pytest.mark.parametrize("version", [5, 6])
async def test_durio_endpoint_answers_in_the_protocol_version_it_is_invoked_with(versions_endpoint, version: int) -> None:
    # A value: OutputCommand, then End.
    response, frames = await invoke_endpoint(
        versions_endpoint, "greet", content_type_of(version), invocation_body(version, b'"v5"')
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type_of(version)
    assert [frame.type_id for frame in frames] == [OUTPUT, m.END]
    assert frames[0].message.WhichOneof("result") == "value" and frames[0].message.value.content == b'"hello v5"'

    # A terminal error: its metadata is a V6 field, left out in V5.
    response, frames = await invoke_endpoint(versions_endpoint, "refuse", content_type_of(version), invocation_body(version, b""))
    assert response.headers["content-type"] == content_type_of(version)
    assert [frame.type_id for frame in frames] == [OUTPUT, m.END]
    failure = frames[0].message.failure
    assert (failure.code, failure.message) == (422, "refused")
    assert {item.key: item.value for item in failure.metadata} == ({} if version == 5 else {"reason": "policy"})

    # A sleep the journal cannot satisfy: the SleepCommand, then a Suspension on its completion (and on cancellation).
    before_ms = int(time.time() * 1000)
    response, frames = await invoke_endpoint(
        versions_endpoint, "nap", content_type_of(version), invocation_body(version, b"60000")
    )
    assert response.headers["content-type"] == content_type_of(version)
    assert [frame.type_id for frame in frames] == [SLEEP, m.SUSPENSION]
    sleep = frames[0].message
    assert before_ms + 60_000 <= sleep.wake_up_time <= int(time.time() * 1000) + 61_000
    assert list(frames[1].message.waiting_completions) == [sleep.result_completion_id]
    assert 1 in frames[1].message.waiting_signals  # the cancel signal

    # The next attempt replays the sleep and its completion: the handler ends, in the same version.
    replay = invocation_body(
        version,
        b"60000",
        (SLEEP, sleep),
        (m.SLEEP_DONE, M["NotificationMessage"](completion_id=sleep.result_completion_id, void=M["Void"]())),
    )
    response, frames = await invoke_endpoint(versions_endpoint, "nap", content_type_of(version), replay)
    assert response.headers["content-type"] == content_type_of(version)
    assert [frame.type_id for frame in frames] == [OUTPUT, m.END]
    assert frames[0].message.value.content == b'"napped 60000"'


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.restate.invocation.v99",
        "application/vnd.restate.invocation.v4",
        "application/vnd.restate.invocation.v7",
        "application/json",
        None,
    ],
)
async def test_durio_endpoint_refuses_an_unsupported_protocol_version_with_415(
    versions_endpoint, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    async with httpx.AsyncClient(timeout=10) as client:
        refused = await client.post(
            f"{versions_endpoint.url}/invoke/Versions/greet", content=invocation_body(5, b'"x"'), headers=headers
        )
    assert refused.status_code == 415, refused.text
    assert not refused.headers.get("content-type", "").startswith("application/vnd.restate.invocation")
    # The endpoint is unharmed: the same request in V5 runs.
    response, frames = await invoke_endpoint(versions_endpoint, "greet", content_type_of(5), invocation_body(5, b'"x"'))
    assert response.status_code == 200 and [frame.type_id for frame in frames] == [OUTPUT, m.END]


async def test_a_durio_server_speaks_v5_to_an_endpoint_that_goes_no_higher(nursery, data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The wrapper advertises V5 at most and answers 415 to anything but V5: only a V5 invocation can succeed.
    peer = hypercorn_deployment("tests.apps.protocol_versions_app:v5_only_app", tmp_path / "v5.log", trio_worker=True)
    await peer.start(ready_path="/health")
    try:
        server = await start_in_process(nursery, [healthy], data_dir)
        registered = await server.admin.post("/deployments", json={"uri": peer.url})
        assert registered.status_code == 201, registered.text
        assert registered.json()["max_protocol_version"] == 5
        with anyio.fail_after(15):  # a refused V6 request would be retried, not answered
            greeted = await server.ingress.post("/restate/call/Versions/greet", json="server")
            assert greeted.status_code == 200, greeted.text
            assert greeted.json() == "hello server"
            # A suspension and a resumption with the sleep's completion, in V5.
            napped = await server.ingress.post("/restate/call/Versions/nap", json=300)
            assert napped.status_code == 200 and napped.json() == "napped 300", napped.text
            refused = await server.ingress.post("/restate/call/Versions/refuse")
            assert refused.status_code == 422 and refused.json()["message"] == "refused", refused.text
    finally:
        peer.stop()
