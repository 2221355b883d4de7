"""What Restate's SDK test suite showed, each fixed: attach/output by idempotency key and by a JSON
target, remote inputs that are not JSON, a remote run step's failure metadata, and an empty body for an
embedded handler whose parameter has no default."""

from __future__ import annotations

import datetime
import pathlib

import pytest

import durio as restate
from tests.conftest import start_in_process
from tests.remote_peers import hypercorn_deployment

calls = restate.Service("CompatCalls")
runs: list[str] = []


@calls.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    await ctx.run_typed("count", lambda: runs.append(name))
    return f"hello {name}"


@calls.handler()
async def optional(ctx: restate.Context, name: str) -> str:
    return f"got {name!r}"


@calls.handler()
async def gate(ctx: restate.Context, name: str) -> str:
    await ctx.sleep(datetime.timedelta(seconds=0.3))
    return f"opened {name}"


counter = restate.VirtualObject("CompatCounter")


@counter.handler()
async def add(ctx: restate.ObjectContext, value: int) -> int:
    total = (await ctx.get("total") or 0) + value
    ctx.set("total", total)
    return total


flow = restate.Workflow("CompatFlow")


@flow.main()
async def run(ctx: restate.WorkflowContext, name: str) -> str:
    return f"ran {name}"


@pytest.fixture
async def server(nursery, tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    running = await start_in_process(nursery, [calls, counter, flow], tmp_path / "data")
    yield running
    nursery.cancel_scope.cancel()


async def test_attach_and_output_by_idempotency_key_answer_the_stored_result(server) -> None:
    runs.clear()
    client = server.ingress
    first = await client.post("/restate/call/CompatCalls/greet", json="ada", headers={"idempotency-key": "k1"})
    assert first.status_code == 200 and first.json() == "hello ada"
    for verb in ("attach", "output"):
        again = await client.get(f"/restate/invocation/CompatCalls/greet/k1/{verb}")
        assert again.status_code == 200, again.text
        assert again.json() == "hello ada"
        assert again.headers["x-restate-id"] == first.headers["x-restate-id"]
    # a keyed target: the object's key sits between the service and the handler
    added = await client.post("/restate/call/CompatCounter/c1/add", json=5, headers={"idempotency-key": "once"})
    assert added.json() == 5
    assert (await client.get("/restate/invocation/CompatCounter/c1/add/once/output")).json() == 5
    assert (await client.get("/restate/invocation/CompatCounter/c2/add/once/output")).status_code == 404
    assert (await client.get("/restate/invocation/CompatCalls/greet/other-key/output")).status_code == 404
    assert (await client.get("/restate/invocation/NoSuchService/greet/k1/output")).status_code == 404
    assert runs == ["ada"]  # reading the result never ran the handler again


async def test_output_by_idempotency_key_is_470_while_running_and_attach_waits(server) -> None:
    client = server.ingress
    sent = await client.post("/restate/send/CompatCalls/gate", json="door", headers={"idempotency-key": "g"})
    assert sent.status_code == 202
    assert (await client.get("/restate/invocation/CompatCalls/gate/g/output")).status_code == 470
    attached = await client.get("/restate/invocation/CompatCalls/gate/g/attach")
    assert attached.status_code == 200 and attached.json() == "opened door"


async def test_post_attach_output_and_lookup_take_restates_json_targets(server) -> None:
    client = server.ingress
    first = await client.post("/restate/call/CompatCalls/greet", json="bob", headers={"idempotency-key": "k2"})
    invocation_id = first.headers["x-restate-id"]
    await client.post("/restate/call/CompatCounter/c9/add", json=2, headers={"idempotency-key": "k3"})
    await client.post("/restate/call/CompatFlow/w1/run", json="flow")
    targets = [
        ({"target": "invocation", "invocationId": invocation_id}, "hello bob"),
        ({"target": "idempotentInvocation", "service": "CompatCalls", "handler": "greet", "idempotencyKey": "k2"}, "hello bob"),
        (
            {"target": "idempotentInvocation", "service": "CompatCounter", "key": "c9", "handler": "add", "idempotencyKey": "k3"},
            2,
        ),
        ({"target": "workflow", "workflowName": "CompatFlow", "workflowKey": "w1"}, "ran flow"),
    ]
    for body, expected in targets:
        for verb in ("attach", "output"):
            response = await client.post(f"/restate/{verb}", json=body)
            assert response.status_code == 200, (verb, body, response.text)
            assert response.json() == expected
    looked_up = await client.post("/restate/lookup", json=targets[1][0])
    assert looked_up.status_code == 200 and looked_up.json() == {"invocationId": invocation_id}
    missing = await client.post(
        "/restate/output", json={"target": "workflow", "workflowName": "CompatFlow", "workflowKey": "nope"}
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body, says",
    [
        (b"", "expected"),
        (b"{}", "missing field `target`"),
        (b"[1]", "JSON object"),
        (b'{"target": "workflow", "workflowName": "CompatFlow"}', "missing field `workflowKey`"),
        (b'{"target": "invocation"}', "missing field `invocationId`"),
        (b'{"target": "somewhere"}', "unknown target"),
    ],
)
async def test_a_bad_json_target_is_a_400_naming_what_is_wrong(server, body: bytes, says: str) -> None:
    response = await server.ingress.post("/restate/attach", content=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["message"] or (not body and "invalid request body" in response.json()["message"])
    assert (await server.ingress.get("/restate/attach")).status_code == 405


async def test_an_empty_body_is_none_for_a_parameter_without_a_default(server) -> None:
    # The official SDK passes None (its manifest, like durio's, says the input is not required).
    response = await server.ingress.post("/restate/call/CompatCalls/optional")
    assert response.status_code == 200, response.text
    assert response.json() == "got None"
    assert (await server.ingress.post("/restate/call/CompatCalls/optional", json="x")).json() == "got 'x'"


@pytest.fixture
async def sdk_deployment(server, tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    peer = hypercorn_deployment("tests.apps.compat_sdk_app:app", tmp_path / "sdk.log")
    await peer.start(ready_path="/health")
    try:
        response = await server.admin.post("/deployments", json={"uri": peer.url})
        assert response.status_code == 201, response.text
        yield peer
    finally:
        peer.stop()


async def test_a_remote_handler_accepting_any_content_type_gets_the_bytes_as_sent(server, sdk_deployment) -> None:
    for body in (b"\xff\x00 not json", b"plain text", b"NaN", b""):
        response = await server.ingress.post(
            "/restate/call/CompatRaw/echo", content=body, headers={"content-type": "application/octet-stream"}
        )
        assert response.status_code == 200, response.text
        assert response.content == b"got " + body


async def test_a_remote_run_step_failure_keeps_its_metadata(server, sdk_deployment) -> None:
    response = await server.ingress.post("/restate/call/CompatRaw/failing_step")
    assert response.status_code == 200, response.text
    assert response.json() == "422 the step refused [('limit', '3'), ('reason', 'quota')]"
    invocation_id = response.headers["x-restate-id"]
    described = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    assert "quota" in str(described)
