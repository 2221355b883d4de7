"""Services written with the official restate-sdk (from PyPI), served by hypercorn over HTTP/1.1,
registered with a durio server and called through durio's ingress — including across a kill -9 of durio."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import httpx
import pytest
import anyio
import anyio.to_thread

from tests.conftest import ROOT, wait_until
from tests.remote_peers import Peer, hypercorn_deployment


@pytest.fixture
async def deployment(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    peer = hypercorn_deployment(
        "tests.apps.official_sdk_app:app", tmp_path / "sdk.log", {"SDK_EFFECTS_LOG": str(tmp_path / "effects.log")}
    )
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


async def test_a_remote_handler_calls_an_in_process_durio_handler(server_process, deployment, tmp_path) -> None:
    """remote (official SDK) -> in-process durio service -> remote again, in one durio server."""
    durio = server_process(pathlib.Path(__file__).parent / "apps" / "mixed_app.py")
    await durio.start()
    await register(durio, deployment)
    async with durio.client() as client, durio.client(admin=True) as admin:
        response = await client.post("/restate/call/SdkShop/ask_local", json="lamp")
        assert response.status_code == 200, response.text
        assert response.json() == "remote saw: local stamped lamp; cart has 1"
        remote_id = response.headers["x-restate-id"]
        local = (await admin.get("/invocations", params={"service": "LocalBack"})).json()["invocations"]
        assert [(view["target"], view["invoked_by"], view["status"]) for view in local] == [
            ("LocalBack/stamp", remote_id, "completed")
        ]
        cart = (await admin.get("/invocations", params={"service": "SdkCart"})).json()["invocations"]
        assert [view["invoked_by"] for view in cart] == [local[0]["id"]]
        assert (await admin.get("/state/SdkCart/mixed")).json()["state"] == {"items": ["lamp"]}
    assert durio.terminate() == 0


async def _send_long_task_and_wait_for_its_sleep(durio, tag: str) -> str:  # type: ignore[no-untyped-def]
    """Send SdkShop.long_task through durio's ingress; return once it waits on its 60 s sleep (on its open
    HTTP/2 stream: the deployment suspends only after the inactivity timeout, as with Restate)."""
    async with durio.client() as client:
        sent = await client.post("/restate/send/SdkShop/long_task", json=tag)
    assert sent.status_code == 202, sent.text
    invocation_id = sent.json()["invocationId"]

    async def suspended_on_the_sleep() -> bool:
        async with durio.client(admin=True) as admin:
            view = (await admin.get(f"/invocations/{invocation_id}")).json()
        return view["status"] in ("running", "suspended") and any(entry.get("type") == "sleep" for entry in view["journal"])

    await wait_until(suspended_on_the_sleep)
    return invocation_id


async def test_cancelling_a_remote_invocation_runs_its_compensation_once(server_process, deployment, tmp_path) -> None:
    durio = server_process(None)
    await durio.start()
    await register(durio, deployment)
    invocation_id = await _send_long_task_and_wait_for_its_sleep(durio, "trip")
    assert effects(tmp_path) == ["start trip"]

    async with durio.client() as client, durio.client(admin=True) as admin:
        cancelled = await admin.patch(f"/invocations/{invocation_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        with anyio.fail_after(15):  # well inside the 60 s sleep: the cancellation did not wait it out
            result = await client.get(f"/restate/attach/{invocation_id}")
        view = (await admin.get(f"/invocations/{invocation_id}")).json()
    # The handler saw the cancellation as TerminalError(409) at its sleep, compensated once, and re-raised it; the
    # invocation fails with what it re-raised: the official SDK words it "cancelled" (durio's own SDK, "canceled").
    assert effects(tmp_path) == ["start trip", "compensate trip after 409 cancelled"], (
        "the compensation ran once; the code after the sleep never ran"
    )
    assert result.status_code == 409 and result.json()["message"] == "cancelled", result.text
    assert view["status"] == "completed"
    assert (view["completion_failure"]["code"], view["completion_failure"]["message"]) == (409, "cancelled")
    assert durio.terminate() == 0


async def test_killing_a_remote_invocation_stops_it_without_compensation(server_process, deployment, tmp_path) -> None:
    durio = server_process(None)
    await durio.start()
    await register(durio, deployment)
    invocation_id = await _send_long_task_and_wait_for_its_sleep(durio, "trip")

    async with durio.client() as client, durio.client(admin=True) as admin:
        killed = await admin.patch(f"/invocations/{invocation_id}/kill")
        assert killed.status_code == 200, killed.text
        with anyio.fail_after(5):
            result = await client.get(f"/restate/attach/{invocation_id}")
        assert result.status_code == 409 and result.json()["message"] == "killed", result.text
        view = (await admin.get(f"/invocations/{invocation_id}")).json()
        assert view["status"] == "completed"
        assert (view["completion_failure"]["code"], view["completion_failure"]["message"]) == (409, "killed")
        # Ended for good: nothing is left to cancel.
        assert (await admin.patch(f"/invocations/{invocation_id}/cancel")).status_code == 409
    assert effects(tmp_path) == ["start trip"], "a kill runs no compensation"
    assert durio.terminate() == 0


async def run_durio_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m durio.cli ARGS` as a real child process."""
    environment = {k: v for k, v in os.environ.items() if k != "DURIO_ADMIN"} | (env or {})
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "durio.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=60, env=environment
        )
    )


async def test_the_cli_registers_and_lists_a_remote_deployment(server_process, deployment) -> None:
    durio = server_process(None)
    await durio.start()
    admin = durio.admin_url.removeprefix("http://")

    listed_empty = await run_durio_cli("deployments", "list", "--admin", admin, "--json")
    assert listed_empty.returncode == 0, listed_empty.stderr
    assert json.loads(listed_empty.stdout) == {"deployments": []}

    registered = await run_durio_cli("deployments", "register", deployment.url, "--admin", admin)
    assert registered.returncode == 0, registered.stderr
    match = re.fullmatch(r"registered (\S+) with services: (.*)\n", registered.stdout)
    assert match, registered.stdout
    deployment_id = match.group(1)
    assert set(match.group(2).split(", ")) == {"SdkShop", "SdkCart", "SdkApproval"}

    # Again, with the flags before the command and JSON out: the same deployment, not a second one.
    again = await run_durio_cli("--admin", admin, "--json", "deployments", "register", deployment.url)
    assert again.returncode == 0, again.stderr
    view = json.loads(again.stdout)
    assert view["id"] == deployment_id and view["uri"] == deployment.url
    assert {s["name"] for s in view["services"]} == {"SdkShop", "SdkCart", "SdkApproval"}
    assert view["min_protocol_version"] <= 5 and view["max_protocol_version"] >= 6

    # The admin address from DURIO_ADMIN this time.
    listed = await run_durio_cli("deployments", "list", "--json", env={"DURIO_ADMIN": admin})
    assert listed.returncode == 0, listed.stderr
    deployments = json.loads(listed.stdout)["deployments"]
    assert [(d["id"], d["uri"]) for d in deployments] == [(deployment_id, deployment.url)]
    assert {s["name"] for s in deployments[0]["services"]} == {"SdkShop", "SdkCart", "SdkApproval"}

    table = await run_durio_cli("deployments", "list", "--admin", admin)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "URI", "CREATED"]
    assert len(rows) == 1 and rows[0].split()[:2] == [deployment_id, deployment.url]

    unreachable = await run_durio_cli("deployments", "register", "http://127.0.0.1:1", "--admin", admin)
    assert unreachable.returncode == 1 and "400" in unreachable.stderr and "cannot discover" in unreachable.stderr

    # The deployment registered by the CLI serves calls through durio's ingress.
    async with durio.client() as client:
        ordered = await client.post("/restate/call/SdkShop/order", json="mug")
    assert ordered.status_code == 200, ordered.text
    assert ordered.json() == "reserve mug; cart has 1"
    assert durio.terminate() == 0
