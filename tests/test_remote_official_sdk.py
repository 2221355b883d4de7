"""Services written with the official restate-sdk (from PyPI), served by hypercorn over HTTP/1.1,
registered with a durio server and called through durio's ingress — including across a kill -9 of durio."""

from __future__ import annotations

import pathlib


import httpx
import pytest


from tests.conftest import wait_until
from tests.remote_peers import Peer, hypercorn_deployment


@pytest.fixture
async def deployment(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    peer = hypercorn_deployment("tests.apps.official_sdk_app:app", tmp_path / "sdk.log", {"SDK_EFFECTS_LOG": str(tmp_path / "effects.log")})
    await peer.start(ready_path="/health")
    yield peer
    peer.stop()


async def register(durio, deployment: Peer) -> dict:  # type: ignore[no-untyped-def]
    async with durio.client(admin=True) as admin:
        response = await admin.post("/deployments", json={"uri": deployment.url})
    assert response.status_code == 201, response.text
    return response.json()


def effects(tmp_path: pathlib.Path) -> list[str]:
    path = tmp_path / "effects.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_official_sdk_services_run_on_durio(server_process, deployment, tmp_path) -> None:
    durio = server_process(None)
    await durio.start()
    registered = await register(durio, deployment)
    assert {s["name"] for s in registered["services"]} == {"SdkShop", "SdkCart", "SdkApproval"}

    async with durio.client() as client, durio.client(admin=True) as admin:
        # run steps, a call to an object, state
        ordered = await client.post("/restate/call/SdkShop/order", json="book")
        assert ordered.status_code == 200, ordered.text
        assert ordered.json() == "reserve book; cart has 1"
        assert (await client.post("/restate/call/SdkShop/order", json="pen")).json() == "reserve pen; cart has 2"
        # a shared handler reads the state
        assert (await client.get("/restate/call/SdkCart/shopper/items")).json() == ["book", "pen"]
        state = (await admin.get("/state/SdkCart/shopper")).json()["state"]
        assert state == {"items": ["book", "pen"]}
        # a terminal error, with its code
        refused = await client.post("/restate/call/SdkShop/order", json="unicorn")
        assert refused.status_code == 409 and refused.json()["message"] == "unicorns are out of stock"
        # a durable sleep
        assert (await client.post("/restate/call/SdkShop/nap", json=200)).json() == "napped 200"
        # an awakeable resolved over HTTP
        sent = await client.post("/restate/send/SdkShop/wait_for_payment")

        async def published() -> bool:
            return any(line.startswith("awakeable ") for line in effects(tmp_path))

        await wait_until(published)
        awakeable = next(line.split(" ", 1)[1] for line in effects(tmp_path) if line.startswith("awakeable "))
        assert (await client.post(f"/restate/awakeables/{awakeable}/resolve", json={"paid": True})).status_code == 202
        assert (await client.get(f"/restate/attach/{sent.json()['invocationId']}")).json() == {"paid": True}
        # a workflow with a promise, resolved by a shared handler
        run = await client.post("/restate/send/SdkApproval/expense-1/run", json="expense")
        await wait_until(lambda: _stage_is(client, "waiting"))
        assert (await client.post("/restate/call/SdkApproval/expense-1/decide", json="approved")).status_code == 200
        assert (await client.get(f"/restate/attach/{run.json()['invocationId']}")).json() == "expense: approved"
        assert (await client.post("/restate/call/SdkApproval/expense-1/run", json="again")).status_code == 409

    assert effects(tmp_path).count("reserve book") == 1
    assert durio.terminate() == 0


async def _stage_is(client: httpx.AsyncClient, stage: str) -> bool:
    return (await client.get("/restate/call/SdkApproval/expense-1/stage")).json() == stage


async def test_a_remote_invocation_survives_kill_9_of_durio(server_process, deployment, tmp_path) -> None:
    durio = server_process(None)
    await durio.start()
    await register(durio, deployment)
    async with durio.client() as client:
        sent = await client.post("/restate/send/SdkShop/nap", json=2500)
    invocation_id = sent.json()["invocationId"]

    async def before_step_durable() -> bool:
        # Kill only once durio has journaled the first step's result: that step must never run again.
        async with durio.client(admin=True) as admin:
            journal = (await admin.get(f"/invocations/{invocation_id}")).json()["journal"]
        return any(entry.get("name") == "before" and entry.get("completed_at") for entry in journal)

    await wait_until(before_step_durable)
    durio.kill9()
    await durio.start()  # the deployment is remembered: no new registration
    async with durio.client() as client:
        result = await client.get(f"/restate/attach/{invocation_id}")
    assert result.json() == "napped 2500"
    assert effects(tmp_path).count("before nap") == 1, "the step durable before the kill did not run again"
    assert effects(tmp_path).count("after nap") == 1
    assert durio.terminate() == 0


async def test_durio_services_and_remote_ones_call_each_other(server_process, deployment, tmp_path) -> None:
    durio = server_process(pathlib.Path(__file__).parent / "apps" / "mixed_app.py")
    await durio.start()
    await register(durio, deployment)
    async with durio.client() as client:
        response = await client.post("/restate/call/LocalFront/buy", json="lamp")
    assert response.status_code == 200, response.text
    assert response.json() == "local saw: reserve lamp; cart has 1"
    assert durio.terminate() == 0


