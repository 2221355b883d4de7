"""What handler code can observe matches the official SDK: the failure text of an exception (its repr),
the message of an exhausted run, isinstance of the context classes, current_context(), the request's
attempt headers and idempotency key, and ctx.scope() refused rather than dropped. Embedded, as a
deployment of a durio server, and (the subset Restate's APIs show) as one of the official Restate server."""

from __future__ import annotations

import pathlib
import typing

import httpx
import pytest
import anyio
import anyio.abc

from tests.apps.sdk_behaviour_app import SERVICES, seen_in_manager
from tests.conftest import InProcessServer, start_in_process
from tests.remote_peers import RestateServer, hypercorn_deployment


@pytest.fixture(params=["embedded", "remote"])
async def server(
    request: pytest.FixtureRequest, nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path, tmp_path: pathlib.Path
) -> typing.AsyncIterator[tuple[InProcessServer, str]]:
    if request.param == "embedded":
        yield await start_in_process(nursery, SERVICES, data_dir), "embedded"
        return
    peer = hypercorn_deployment("tests.apps.sdk_behaviour_app:app", tmp_path / "behaviour.log", trio_worker=True)
    await peer.start(ready_path="/health")
    try:
        server = await start_in_process(nursery, [], data_dir)
        registered = await server.admin.post("/deployments", json={"uri": peer.url})
        assert registered.status_code == 201, registered.text
        yield server, "remote"
    finally:
        peer.stop()


async def test_a_handlers_exception_is_recorded_as_its_repr(server: tuple[InProcessServer, str]) -> None:
    ingress, admin = server[0].ingress, server[0].admin
    response = await ingress.post("/Behaviour/fails_once", json=server[1])
    assert response.json() == "recovered"
    view = (await admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    messages = [event["message"] for event in view["events"] if event["kind"] == "attempt_failed"]
    assert messages == ["ValueError('boom')"]


async def test_an_exhausted_run_fails_with_the_last_errors_repr(server: tuple[InProcessServer, str]) -> None:
    response = await server[0].ingress.post("/Behaviour/exhausted")
    assert response.json() == "ValueError('always fails')"


async def test_a_step_runs_when_awaited_and_one_never_awaited_never_runs(server: tuple[InProcessServer, str]) -> None:
    ingress = server[0].ingress
    assert (await ingress.post("/Behaviour/steps", json=server[1])).json() == 3
    effects = (await ingress.post("/Behaviour/effects", json=server[1])).json()
    assert effects == [f"{server[1]}: first", f"{server[1]}: second"]


async def test_a_step_whose_action_is_an_object_with_an_async_call_is_awaited_on_both_hosts(
    server: tuple[InProcessServer, str],
) -> None:
    """Embedded and behind durio.app alike (the endpoint ran such an object in a thread before the hosts shared
    one attempt loop, and journaled the coroutine it returned as a failure)."""
    ingress, tag = server[0].ingress, f"{server[1]} object"
    assert (await ingress.post("/Behaviour/async_object_step", json=tag)).json() == f"quote for {tag}"
    effects = (await ingress.post("/Behaviour/effects", json=tag)).json()
    assert effects == [f"{tag}: quoted"]


async def test_a_reply_has_the_handlers_content_type(server: tuple[InProcessServer, str]) -> None:
    ingress = server[0].ingress
    response = await ingress.post("/Behaviour/shout", content=b"hey", headers={"content-type": "text/plain"})
    assert response.status_code == 200, response.text
    assert (response.content, response.headers["content-type"]) == (b"HEY", "text/plain; charset=utf-8")
    attached = await ingress.get(f"/restate/invocation/{response.headers['x-restate-id']}/output")
    assert (attached.content, attached.headers["content-type"]) == (b"HEY", "text/plain; charset=utf-8")
    default = await ingress.post("/Behaviour/exhausted")
    assert default.headers["content-type"] == "application/json"


async def test_a_content_type_the_handler_does_not_accept_is_a_400_as_on_restate(server: tuple[InProcessServer, str]) -> None:
    ingress = server[0].ingress
    refused = await ingress.post("/Behaviour/shout", json="hey")  # application/json, for a text/plain handler
    assert refused.status_code == 400
    assert refused.json()["message"] == "input validation error: Content-type 'application/json' does not match 'text/plain'"
    wrong = await ingress.post("/Behaviour/fails_once", content=b'"x"', headers={"content-type": "text/plain"})
    assert wrong.status_code == 400 and "does not match 'application/json'" in wrong.json()["message"]
    with_charset = await ingress.post("/Behaviour/shout", content=b"hey", headers={"content-type": "text/plain; charset=utf-8"})
    assert with_charset.content == b"HEY"
    untyped = await ingress.post("/Behaviour/shout", content=b"hey")  # no content type: read anyway (Restate: 400)
    assert untyped.content == b"HEY"


async def test_context_classes_tell_exclusive_from_shared(server: tuple[InProcessServer, str]) -> None:
    ingress = server[0].ingress
    assert (await ingress.post("/Kinds/k/exclusive")).json() == [True, False]
    assert (await ingress.post("/Kinds/k/shared")).json() == [False, True]


async def test_the_request_and_current_context(server: tuple[InProcessServer, str]) -> None:
    response = await server[0].ingress.post("/Behaviour/request_info", headers={"x-probe": "1", "idempotency-key": "k-1"})
    info = response.json()
    assert info["current_context_is_ctx"] is True
    if server[1] == "embedded":
        assert info["idempotency_key"] == "k-1"
        assert "x-probe" in info["attempt_headers"]  # embedded: the invocation's own headers
        assert seen_in_manager and all(seen_in_manager)  # invocation context managers see it too
    else:
        assert info["idempotency_key"] is None  # protocols V5/V6 do not carry it, as for the official SDK
        assert "content-type" in info["attempt_headers"]  # the attempt's own HTTP request


async def test_a_scope_is_refused_not_dropped(server: tuple[InProcessServer, str]) -> None:
    response = await server[0].ingress.post("/Behaviour/scoped")
    assert response.status_code == 501
    assert "scope" in response.json()["message"]


async def test_the_same_behaviour_through_the_official_restate_server(tmp_path: pathlib.Path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    peer = hypercorn_deployment("tests.apps.sdk_behaviour_app:app", tmp_path / "behaviour.log", trio_worker=True)
    try:
        await restate.start(ready_path="/health")
        await peer.start(ready_path="/health")
        await restate.register(peer.url)
        async with httpx.AsyncClient(base_url=restate.ingress_url, timeout=60) as ingress:
            assert (await ingress.post("/Behaviour/exhausted")).json() == "ValueError('always fails')"
            assert (await ingress.post("/Kinds/k/exclusive")).json() == [True, False]
            assert (await ingress.post("/Kinds/k/shared")).json() == [False, True]
            assert (await ingress.post("/Behaviour/steps", json="restate")).json() == 3
            assert (await ingress.post("/Behaviour/effects", json="restate")).json() == ["restate: first", "restate: second"]
            info = (await ingress.post("/Behaviour/request_info", headers={"idempotency-key": "k-2"})).json()
            assert info["current_context_is_ctx"] is True and "content-type" in info["attempt_headers"]
            shout = await ingress.post("/Behaviour/shout", content=b"hey", headers={"content-type": "text/plain"})
            assert (shout.content, shout.headers["content-type"]) == (b"HEY", "text/plain; charset=utf-8")
            refused = await ingress.post("/Behaviour/shout", json="hey")
            assert refused.status_code == 400 and "does not match 'text/plain'" in refused.json()["message"]
            scoped = await ingress.post("/Behaviour/scoped")
            assert scoped.status_code == 501 and "scope" in scoped.json()["message"]
    finally:
        peer.stop()
        restate.stop()
