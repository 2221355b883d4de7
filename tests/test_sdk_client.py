"""The official SDK's ingress client (`create_client`) against a real durio on loopback ports, and the same
calls through the official Restate server (durio.app as its deployment)."""

from __future__ import annotations

import pathlib
import sys
from datetime import timedelta

import pytest
import anyio
import anyio.abc

import durio
from durio.client import create_client
from tests.apps.sdk_client_app import SERVICES, add, calls, confirm, current, greet, reverse, run, seen_headers, shout
from tests.conftest import free_port, start_in_process, wait_until
from tests.remote_peers import Peer, RestateServer

CLIENT_APP = pathlib.Path(__file__).resolve().parent / "apps" / "sdk_client_app.py"


async def test_calls_and_sends_to_every_kind_of_handler(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, SERVICES, data_dir)
    await calls_and_sends_to_every_kind_of_handler(server.running.ingress_url)
    assert seen_headers == {"x-test-default": "d", "x-test-call": "c"}


@pytest.mark.slow  # the official Restate server and a deployment, as processes
async def test_the_same_calls_through_the_official_restate_server(tmp_path: pathlib.Path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    port = free_port()
    endpoint = Peer([sys.executable, str(CLIENT_APP)], tmp_path / "endpoint.log", port, {"CLIENT_APP_BIND": f"127.0.0.1:{port}"})
    try:
        await restate.start(ready_path="/health")
        await endpoint.start()
        await restate.register(endpoint.url)
        await calls_and_sends_to_every_kind_of_handler(restate.ingress_url)
    finally:
        endpoint.stop()
        restate.stop()


async def calls_and_sends_to_every_kind_of_handler(ingress_url: str) -> None:
    async with create_client(ingress_url, headers={"x-test-default": "d"}) as client:
        assert isinstance(client, durio.RestateClient)
        assert await client.service_call(greet, "Ada", headers={"x-test-call": "c"}) == "Hello Ada"
        assert await client.service_call(shout, None) == "HEY"
        assert await client.service_call(reverse, b"abc") == b"cba"

        assert await client.object_call(add, "k", 2) == 2
        handle = await client.object_send(add, "k", 3)
        assert isinstance(handle, durio.RestateClientSendHandle)
        assert handle.invocation_id.startswith("inv_") and handle.status_code in (200, 202)

        async def added() -> bool:
            return await client.object_call(current, "k", None) == 5

        await wait_until(added)

        sent = await client.workflow_send(run, "w1", "ada@example.com")
        assert sent.invocation_id
        await client.workflow_call(confirm, "w2", "welcome")  # a promise may be resolved before the run starts
        assert await client.workflow_call(run, "w2", "ada@example.com") == "welcome ada@example.com"

        # Raw bytes carry no content type (as in the SDK); Restate's ingress wants one for a JSON handler.
        json_body = {"Content-Type": "application/json"}
        assert await client.generic_call("ClientGreeter", "greet", b'"Bob"', headers=json_body) == b'"Hello Bob"'
        generic = await client.generic_send("ClientCounter", "add", b"10", key="g", headers=json_body)
        assert generic.invocation_id


async def test_an_idempotency_key_runs_the_handler_once(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, SERVICES, data_dir)
    async with create_client(server.running.ingress_url) as client:
        for _ in range(3):
            assert await client.service_call(greet, "Once", idempotency_key="once-1") == "Hello Once"
    assert calls["Once"] == 1


async def test_a_delayed_send_runs_after_its_delay(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, SERVICES, data_dir)
    async with create_client(server.running.ingress_url) as client:
        start = anyio.current_time()
        await client.object_send(add, "late", 7, send_delay=timedelta(milliseconds=300))
        assert await client.object_call(current, "late", None) == 0

        async def arrived() -> bool:
            return await client.object_call(current, "late", None) == 7

        await wait_until(arrived)
        assert anyio.current_time() - start >= 0.3


async def test_errors_are_http_errors(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, SERVICES, data_dir)
    async with create_client(server.running.ingress_url) as client:
        with pytest.raises(durio.HttpError) as refused:
            await client.service_call(greet, "nobody")
        assert refused.value.status_code == 404 and "no such person" in (refused.value.body or "")
        with pytest.raises(durio.HttpError) as missing:
            await client.generic_call("NoSuchService", "nothing", b"")
        assert missing.value.status_code == 404


async def test_flow_control_scopes_are_not_silently_dropped(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, SERVICES, data_dir)
    async with create_client(server.running.ingress_url) as client:
        with pytest.raises(ValueError, match="limit_key needs a scope"):
            await client.generic_call("ClientGreeter", "greet", b'"x"', limit_key="tenant")
        # durio's ingress has no scoped routes: the scoped call fails rather than running unscoped.
        with pytest.raises(durio.HttpError):
            await client.scope("tenant-a").service_call(greet, "Scoped")
    assert "Scoped" not in calls


async def test_create_client_needs_an_ingress() -> None:
    with pytest.raises(durio.ConnectError, match="ingress is required"):
        async with create_client():
            pass
