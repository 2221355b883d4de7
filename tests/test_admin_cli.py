"""The `durio` command against a running server, and the admin API it sits on."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import anyio.to_thread
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, TOUR_APP, wait_until


def durio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "durio.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


async def run_durio(*args: str) -> subprocess.CompletedProcess[str]:
    return await anyio.to_thread.run_sync(lambda: durio(*args))


async def test_cli_lists_describes_controls_invocations_and_reads_state(server_process) -> None:
    server = server_process(TOUR_APP, env={"TOUR_NETFLIX_DOWN": "1"})
    await server.start()
    admin = server.admin_url.removeprefix("http://")
    async with server.client() as client:
        netflix = await client.post(
            "/restate/send/SubscriptionService/add",
            json={"userId": "u1", "creditCard": "4111", "subscriptions": ["Hulu", "Netflix"]},
        )
        netflix_id = netflix.json()["invocationId"]
        done = await client.post(
            "/restate/call/SubscriptionService/add", json={"userId": "u2", "creditCard": "4111", "subscriptions": ["Hulu"]}
        )
        done_id = done.headers["x-restate-id"]
        for subscription in ("Hulu", "Prime"):
            await client.post("/restate/call/UserSubscriptions/user-123/add", json=subscription)
        scheduled = await client.post(
            "/restate/send/SubscriptionService/add?delay=1h", json={"userId": "u3", "creditCard": "1", "subscriptions": []}
        )
        scheduled_id = scheduled.json()["invocationId"]

    listing = await run_durio("invocations", "list", "--admin", admin, "--json")
    assert listing.returncode == 0, listing.stderr
    ids = {view["id"] for view in json.loads(listing.stdout)["invocations"]}
    assert {netflix_id, done_id, scheduled_id} <= ids

    human = await run_durio("invocations", "list", "--admin", admin, "--status", "completed")
    assert human.returncode == 0 and done_id in human.stdout and "STATUS" in human.stdout and netflix_id not in human.stdout

    async def retrying() -> bool:
        described = await run_durio("invocations", "describe", netflix_id, "--admin", admin, "--json")
        return json.loads(described.stdout)["retry_count"] >= 2

    await wait_until(retrying)
    described = await run_durio("invocations", "describe", netflix_id, "--admin", admin)
    assert "Netflix API is down" in described.stdout and "add-Netflix" in described.stdout and "journal" in described.stdout

    cancelled = await run_durio("invocations", "cancel", scheduled_id, "--admin", admin, "--json")
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["action"] == "cancel"
    paused = await run_durio("invocations", "pause", netflix_id, "--admin", admin, "--json")
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout)["action"] == "pause"

    async def status_is(wanted: str) -> bool:
        described = await run_durio("invocations", "describe", netflix_id, "--admin", admin, "--json")
        return json.loads(described.stdout)["status"] == wanted

    await wait_until(lambda: status_is("paused"))
    resumed = await run_durio("invocations", "resume", netflix_id, "--admin", admin)
    assert resumed.returncode == 0, resumed.stderr
    await wait_until(lambda: status_is("backing-off"))
    killed_json = await run_durio("invocations", "kill", netflix_id, "--admin", admin, "--json")
    assert killed_json.returncode == 0 and json.loads(killed_json.stdout)["action"] == "kill"
    killed = await run_durio("invocations", "kill", netflix_id, "--admin", admin)
    assert killed.returncode == 1 and "409" in killed.stderr, "a second kill: the invocation has already ended"
    purged = await run_durio("invocations", "purge", done_id, "--admin", admin, "--json")
    assert purged.returncode == 0 and json.loads(purged.stdout)["action"] == "purge"
    missing = await run_durio("invocations", "describe", done_id, "--admin", admin)
    assert missing.returncode == 1 and "404" in missing.stderr

    state = await run_durio("state", "get", "UserSubscriptions", "user-123", "--admin", admin, "--json")
    assert json.loads(state.stdout)["state"]["subscriptions"] == ["Hulu", "Prime"]
    state_table = await run_durio("state", "get", "UserSubscriptions", "user-123", "--admin", admin)
    assert "subscriptions" in state_table.stdout and "lastUpdated" in state_table.stdout

    services = await run_durio("services", "list", "--admin", admin, "--json")
    names = {s["name"] for s in json.loads(services.stdout)["services"]}
    assert {"SubscriptionService", "UserSubscriptions", "SignupWorkflow"} <= names
    flags_first = await run_durio("--admin", admin, "--json", "services", "list")
    assert flags_first.returncode == 0, flags_first.stderr
    assert {s["name"] for s in json.loads(flags_first.stdout)["services"]} == names
    assert server.terminate() == 0


async def test_cli_reports_an_unreachable_server_clearly() -> None:
    result = await run_durio("invocations", "list", "--admin", "127.0.0.1:1")
    assert result.returncode == 1 and "cannot reach the admin API" in result.stderr


async def test_metrics_are_valid_prometheus_text(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    async with server.client() as client, server.client(admin=True) as admin:
        for n in range(3):
            await client.post("/restate/call/UserSubscriptions/u/add", json=f"s{n}")
        response = await admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    by_status = {sample.labels["status"]: sample.value for sample in families["durio_invocations"].samples}
    assert by_status["completed"] == 3 and set(by_status) >= {"pending", "running", "suspended", "backing-off", "paused"}
    assert families["durio_journal_appends"].samples[0].value >= 3 * 4
    assert families["durio_storage_size_bytes"].samples[0].value > 0
    assert "durio_attempt_failures" in families
    assert server.terminate() == 0


async def test_the_ui_is_served_from_the_admin_port(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    async with server.client(admin=True) as admin:
        index = await admin.get("/ui/")
        script = await admin.get("/ui/app.js")
        redirect = await admin.get("/ui")
    assert index.status_code == 200 and '<script src="app.js">' in index.text
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert redirect.status_code == 307
    assert server.terminate() == 0
