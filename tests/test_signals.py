"""Named signals: `ctx.signal(name)` waits for what another handler sends with `ctx.resolve_signal` or
`ctx.reject_signal`. Journaled (a kill -9 loses nothing), and the same embedded, as a remote deployment
of a durio server, and as a deployment of the official Restate server."""

from __future__ import annotations

import pathlib
import sys
import typing

import httpx
import anyio
import anyio.abc

from durio.journal import entries as e
from tests.apps.signals_app import SERVICES
from tests.conftest import TEST_APPS, free_port, start_in_process
from tests.remote_peers import Peer, RestateServer

SIGNALS_APP = TEST_APPS / "signals_app.py"


async def start_waiter(client: httpx.AsyncClient, handler: str = "wait_for_approval") -> str:
    sent = await client.post(f"/SignalWaiter/{handler}/send")
    assert sent.status_code in (200, 202), sent.text
    return sent.json()["invocationId"]


async def attach(client: httpx.AsyncClient, invocation_id: str) -> httpx.Response:
    return await client.get(f"/restate/invocation/{invocation_id}/attach", timeout=60)


async def signals_reach_their_invocations(client: httpx.AsyncClient) -> None:
    approved = await start_waiter(client)
    rejected = await start_waiter(client)
    early = await start_waiter(client, "wait_for_two")
    # Sent before wait_for_two asks for them (it sleeps first), and in the other order.
    for name, value in (("second", 2), ("first", 1)):
        sent = await client.post("/SignalSender/approve", json={"invocation_id": early, "name": name, "value": value})
        assert sent.status_code == 200, sent.text
    await anyio.sleep(0.1)  # let the waiters reach their signal (they suspend there)
    assert (await client.post("/SignalSender/approve", json={"invocation_id": approved, "value": "yes"})).status_code == 200
    assert (await client.post("/SignalSender/reject", json={"invocation_id": rejected, "message": "no"})).status_code == 200
    assert (await attach(client, approved)).json() == "ran, approved: yes"
    assert (await attach(client, rejected)).json() == "ran, rejected (451): no"
    assert (await attach(client, early)).json() == [2, 1]


async def test_signals_embedded(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, SERVICES, data_dir, suspend_after_s=0.0)
    await signals_reach_their_invocations(server.ingress)


async def test_a_signal_reaches_an_invocation_across_a_kill_9(server_process: typing.Any) -> None:
    server = server_process(f"{SIGNALS_APP}:SERVICES")
    server.ingress_bind = f"127.0.0.1:{free_port()}"
    await server.start()
    async with server.client() as client:
        waiting = await start_waiter(client)
        await anyio.sleep(0.3)
    server.kill9()
    await server.start()
    async with server.client() as client:
        assert (await client.post("/SignalSender/approve", json={"invocation_id": waiting, "value": "later"})).status_code == 200
        assert (await attach(client, waiting)).json() == "ran, approved: later"


def deployment(tmp_path: pathlib.Path) -> Peer:
    port = free_port()
    return Peer([sys.executable, str(SIGNALS_APP)], tmp_path / "endpoint.log", port, {"SIGNALS_APP_BIND": f"127.0.0.1:{port}"})


async def test_signals_in_a_deployment_of_a_durio_server(server_process: typing.Any, tmp_path: pathlib.Path) -> None:
    endpoint = deployment(tmp_path)
    await endpoint.start()
    try:
        server = server_process(None)
        await server.start()
        async with server.client(admin=True) as admin:
            assert (await admin.post("/deployments", json={"uri": endpoint.url})).status_code == 201
        async with server.client() as client:
            await signals_reach_their_invocations(client)
    finally:
        endpoint.stop()


async def test_signals_in_a_deployment_of_the_official_restate_server(tmp_path: pathlib.Path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    endpoint = deployment(tmp_path)
    try:
        await restate.start(ready_path="/health")
        await endpoint.start()
        await restate.register(endpoint.url)
        async with httpx.AsyncClient(base_url=restate.ingress_url, timeout=60) as client:
            await signals_reach_their_invocations(client)
    finally:
        endpoint.stop()
        restate.stop()


def test_named_signal_handles_are_stable_and_apart_from_other_handles() -> None:
    handle = e.named_signal_handle("approval")
    assert handle == e.named_signal_handle("approval") != e.named_signal_handle("approval2")
    assert e.is_named_signal_handle(handle)
    assert not e.is_named_signal_handle(-(2**32 - 1)) and not e.is_named_signal_handle(5)
    assert e.handle_of(e.NamedSignal(signal_name="approval")) == handle
