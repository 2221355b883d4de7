"""What a remote peer may cost durio (RED-TEAM B9): registration fetches whatever URL the admin API is given,
and invocations talk to registered deployments. Every outbound request is bounded in time and, for a manifest,
in size; an error says the status, never what the peer answered; the URI and headers cannot steer the request.

The peers are real loopback sockets (tests/remote_peers.RawPeer) that hang, drip, answer without end or with
a secret; the durio server runs in-process, so DISCOVERY_LIMITS is set small for the timing tests.
"""

from __future__ import annotations

import json
import time

import pytest
import anyio
import anyio.abc

import durio as restate
from durio.actors.remote import deployments as remote
from durio.actors.remote import http_client
from tests.conftest import start_in_process, wait_until
from tests.remote_peers import RawPeer

MANIFEST_TYPE = b"application/vnd.restate.endpointmanifest.v3+json"
SECRET = b'{"internal_token": "s3cr3t-4242", "path": "/internal/keys"}'

healthy = restate.Service("Healthy")


@healthy.handler()
async def ping(ctx: restate.Context) -> str:
    return "pong"


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    return await start_in_process(nursery, [healthy], data_dir)


async def start_peer(nursery: anyio.abc.TaskGroup, answer) -> RawPeer:  # type: ignore[no-untyped-def]
    peer = RawPeer(answer)
    await nursery.start(peer.serve)
    return peer


async def assert_served(server) -> None:  # type: ignore[no-untyped-def]
    assert (await server.ingress.post("/restate/call/Healthy/ping")).json() == "pong"
    assert (await server.admin.get("/health")).status_code == 200


async def register(server, uri: str, **extra) -> tuple[int, str, float]:  # type: ignore[no-untyped-def]
    """POST /deployments; (status, message, seconds it took). A registration still waiting after 15 s fails the test."""
    started = time.monotonic()
    with anyio.fail_after(15):
        response = await server.admin.post("/deployments", json={"uri": uri, **extra})
    return response.status_code, response.text, time.monotonic() - started


# ------------------------------------------------------------------ discovery


@pytest.fixture
def short_discovery(monkeypatch):  # type: ignore[no-untyped-def]
    # raising=False: on code without DISCOVERY_LIMITS the test runs (and shows the hang) instead of erroring.
    limits = (
        http_client.Limits(connect_timeout=1.0, read_timeout=0.5, total_timeout=1.5, max_response_bytes=1024 * 1024)
        if hasattr(http_client, "Limits")
        else None
    )
    monkeypatch.setattr(remote, "DISCOVERY_LIMITS", limits, raising=False)
    return limits


async def silent(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
    await anyio.sleep_forever()


async def dripping(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
    """Never silent for long, never done."""
    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-type: " + MANIFEST_TYPE + b"\r\ncontent-length: 100000\r\n\r\n")
    while True:
        await stream.send(b" ")
        await anyio.sleep(0.1)


async def test_a_peer_that_never_answers_fails_registration_within_the_read_timeout(server, nursery, short_discovery) -> None:
    peer = await start_peer(nursery, silent)
    status, message, took = await register(server, peer.url)
    assert status == 400 and "did not send anything for 0.5 s" in message, message
    assert took < 3, f"registration waited {took:.1f} s for a silent peer"
    await assert_served(server)


async def test_a_peer_that_keeps_dripping_fails_registration_within_the_total_timeout(server, nursery, short_discovery) -> None:
    peer = await start_peer(nursery, dripping)
    status, message, took = await register(server, peer.url)
    assert status == 400 and "did not finish answering within 1.5 s" in message, message
    assert took < 4, f"registration waited {took:.1f} s for a dripping peer"


async def test_a_huge_manifest_is_refused_without_reading_it_all(server, nursery) -> None:
    size = 100 * 1024 * 1024

    async def endless(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
        await stream.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: " + MANIFEST_TYPE + b"\r\ncontent-length: " + str(size).encode() + b"\r\n\r\n"
        )
        await peer.send_body(stream, size, b"[" * 65536)

    peer = await start_peer(nursery, endless)
    status, message, _ = await register(server, peer.url)
    assert status == 400 and "the manifest is larger than 1048576 bytes" in message, message
    # What the peer got out before durio hung up: what durio read, plus the kernel buffers on both ends.
    assert peer.sent < 32 * 1024 * 1024, f"durio took {peer.sent} bytes of a manifest limited to 1 MiB"
    await assert_served(server)


async def test_an_error_answer_is_reported_by_its_status_and_its_body_is_not_echoed(server, nursery) -> None:
    async def forbidden(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
        await stream.send(
            b"HTTP/1.1 403 s3cr3t-in-the-reason\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(SECRET)).encode()
            + b"\r\n\r\n"
            + SECRET
        )

    peer = await start_peer(nursery, forbidden)
    status, message, _ = await register(server, peer.url + "/internal/keys", additional_headers={"Authorization": "Bearer x"})
    assert status == 400, message
    assert json.loads(message)["message"] == f"{peer.url}/internal/keys/discover answered 403 Forbidden"
    # Additional headers go as given (here in the HTTP/1.1 request that follows the peer's refusal of HTTP/2).
    assert b"authorization: bearer x" in peer.heads[-1].lower()


async def test_a_uri_with_a_query_fragment_or_credentials_is_refused_before_any_request(server, nursery) -> None:
    async def manifest(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
        await stream.send(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")

    peer = await start_peer(nursery, manifest)
    for uri, complaint in [
        (peer.url + "/internal/keys#", "has a query or a fragment"),
        (peer.url + "/internal/keys?", "has a query or a fragment"),
        (peer.url + "/internal/keys?x=1&", "has a query or a fragment"),
        (peer.url.replace("http://", "http://user:pw@"), "carries no credentials"),
        ("ftp://127.0.0.1:1", "not an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "is not a URL"),
    ]:
        status, message, _ = await register(server, uri)
        assert status == 400 and complaint in message, (uri, message)
    assert peer.heads == [], "durio fetched a URI it refused"


@pytest.mark.parametrize(
    ("headers", "complaint"),
    [
        ({"Host": "internal.example"}, "'Host' is set by durio"),
        ({"Content-Length": "0"}, "'Content-Length' is set by durio"),
        ({"Transfer-Encoding": "chunked"}, "is set by durio"),
        ({"x-a": "b\r\nx-injected: 1"}, "a line break"),
        ({"bad name": "x"}, "not a valid header name"),
    ],
)
async def test_additional_headers_cannot_reframe_the_request(server, nursery, headers, complaint) -> None:
    async def manifest(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
        await stream.send(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")

    peer = await start_peer(nursery, manifest)
    status, message, _ = await register(server, peer.url, additional_headers=headers)
    assert status == 400 and complaint in message, message
    assert peer.heads == []


# ------------------------------------------------------------------ invocations

SERVICE = {"name": "Remote", "ty": "SERVICE", "handlers": [{"name": "work", "input": {}, "output": {}}]}


def deployment_answer(invoke):  # type: ignore[no-untyped-def]
    """A peer that discovers fine (with a short inactivity and abort timeout) and invokes as `invoke` does."""
    manifest = json.dumps(
        {
            "protocolMode": "REQUEST_RESPONSE",
            "minProtocolVersion": 5,
            "maxProtocolVersion": 6,
            "services": [{**SERVICE, "inactivityTimeout": 300, "abortTimeout": 300}],
        }
    ).encode()

    async def answer(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
        if head.split(b" ")[1].endswith(b"/discover"):
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: "
                + MANIFEST_TYPE
                + b"\r\ncontent-length: "
                + str(len(manifest)).encode()
                + b"\r\n\r\n"
                + manifest
            )
        else:
            await invoke(peer, stream)

    return answer


async def registered(server, nursery, invoke) -> RawPeer:  # type: ignore[no-untyped-def]
    peer = await start_peer(nursery, deployment_answer(invoke))
    status, message, _ = await register(server, peer.url)
    assert status == 201, message
    return peer


async def failure_after_retries(server, invocation_id: str, retries: int = 2) -> dict:  # type: ignore[type-arg]
    async def retried() -> bool:
        return (await server.admin.get(f"/invocations/{invocation_id}")).json()["retry_count"] >= retries

    await wait_until(retried, timeout=15)
    return (await server.admin.get(f"/invocations/{invocation_id}")).json()["last_failure"]


async def test_a_deployment_silent_past_its_inactivity_and_abort_timeouts_is_retried(server, nursery) -> None:
    async def head_then_silence(peer: RawPeer, stream: anyio.abc.SocketStream) -> None:
        await stream.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.restate.invocation.v6\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        await anyio.sleep_forever()

    peer = await registered(server, nursery, head_then_silence)
    started = time.monotonic()
    invocation_id = (await server.ingress.post("/restate/send/Remote/work")).json()["invocationId"]
    failure = await failure_after_retries(server, invocation_id)
    assert "did not send anything for 0.6 s" in failure["message"] and failure["code"] == 503, failure
    assert time.monotonic() - started < 10
    assert len(peer.paths()) >= 3  # discovery, then an attempt per retry
    await assert_served(server)


async def test_a_huge_error_answer_from_a_deployment_is_read_only_for_its_excerpt(server, nursery) -> None:
    size = 50 * 1024 * 1024

    async def huge_error(peer: RawPeer, stream: anyio.abc.SocketStream) -> None:
        await stream.send(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: " + str(size).encode() + b"\r\n\r\n")
        await peer.send_body(stream, size, b"on fire " * 8192)

    peer = await registered(server, nursery, huge_error)
    invocation_id = (await server.ingress.post("/restate/send/Remote/work")).json()["invocationId"]
    failure = await failure_after_retries(server, invocation_id)
    assert "answered 500: on fire" in failure["message"] and len(failure["message"]) < 500, failure["message"][:600]
    # Three attempts; each could have pushed the kernel buffers' worth before durio hung up, not 50 MB.
    assert peer.sent < 48 * 1024 * 1024, f"durio read {peer.sent} bytes of error answers"


async def test_a_manifest_nested_too_deep_is_a_clear_400_not_a_500(server, nursery) -> None:
    """Found by the huge-manifest test on the code before it: 100 MB of '[' made json.loads raise RecursionError,
    which escaped the admin API as a 500. Under the size limit, 200,000 '[' still do."""
    body = b"[" * 200_000

    async def nested(peer: RawPeer, stream: anyio.abc.SocketStream, head: bytes) -> None:
        await stream.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: "
            + MANIFEST_TYPE
            + b"\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    peer = await start_peer(nursery, nested)
    status, message, _ = await register(server, peer.url)
    assert status == 400 and "is not JSON" in message, message
