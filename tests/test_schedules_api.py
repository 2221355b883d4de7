"""/schedules on the admin API (real hypercorn, real HTTP) and `durio schedules ...` against it."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest
import anyio
import anyio.to_thread

import durio as restate
from tests.conftest import ROOT, start_in_process, wait_until

clock = restate.Service("Clock")
cart = restate.VirtualObject("Cart")
signup = restate.Workflow("Signup")


@clock.handler()
async def chime(ctx: restate.Context, at: str) -> str:
    return at


@clock.handler()
async def fail(ctx: restate.Context) -> None:
    raise restate.TerminalError("no chime today", status_code=418)


@cart.handler()
async def expire(ctx: restate.ObjectContext) -> None:
    return None


@signup.main()
async def run(ctx: restate.WorkflowContext) -> str:
    return ctx.key()


@signup.handler()
async def status(ctx: restate.WorkflowSharedContext) -> str:
    return "ok"


SERVICES = [clock, cart, signup]


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        ({"id": "x", "cron": "61 * * * *", "target": "Clock/chime"}, "cron", "Bad minute"),
        ({"id": "x", "cron": "* * *", "target": "Clock/chime"}, "cron", "Wrong number of fields"),
        ({"id": "x", "cron": "@daily", "target": "Clock/chime"}, "cron", "nicknames"),
        ({"id": "x", "target": "Clock/chime"}, "cron", "either 'cron'"),
        ({"id": "x", "cron": "* * * * *", "every": "1m", "target": "Clock/chime"}, "cron", "not both"),
        ({"id": "x", "every": "soon", "target": "Clock/chime"}, "every", "is not a duration"),
        ({"id": "x", "every": "10ms", "target": "Clock/chime"}, "every", "shortest interval"),
        ({"id": "x", "every": "1m", "target": "Nope/chime"}, "target", "there is no service 'Nope'"),
        ({"id": "x", "every": "1m", "target": "Clock/nope"}, "target", "has no handler 'nope'"),
        ({"id": "x", "every": "1m", "target": "Cart/expire"}, "target", "name the key"),
        ({"id": "x", "every": "1m", "target": "Clock/k/chime"}, "target", "has no keys"),
        ({"id": "x", "every": "1m", "target": "Signup/status"}, "target", "shared handler"),
        ({"id": "x", "every": "1m", "target": "chime"}, "target", "is not a target"),
        ({"id": "x", "cron": "0 3 * * *", "timezone": "Mars/Olympus", "target": "Clock/chime"}, "timezone", "not a time zone"),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "catchup_window": "an hour"}, "catchup_window", "is not a duration"),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "catchup_window": "100ms"}, "catchup_window", "shortest window"),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "jitter": "2h"}, "jitter", "not shorter than the catch-up window"),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "overlap": "queue"}, "overlap", "not an overlap policy"),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "start_at": "tomorrow"}, "start_at", "RFC 3339"),
        (
            {
                "id": "x",
                "every": "1m",
                "target": "Clock/chime",
                "start_at": "2030-01-02T00:00:00Z",
                "end_at": "2030-01-01T00:00:00Z",
            },
            "end_at",
            "after start_at",
        ),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "paused": "yes"}, "paused", "true or false"),
        ({"id": "no spaces", "every": "1m", "target": "Clock/chime"}, "id", "not a schedule id"),
        ({"id": "x", "every": "1m", "target": "Clock/chime", "crontab": "* * * * *"}, "crontab", "not a schedule field"),
        (["x"], "body", "JSON object"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(body, field, why, tmp_path, nursery) -> None:  # type: ignore[no-untyped-def]
    server = await start_in_process(nursery, SERVICES, tmp_path / "data")
    answer = await server.admin.post("/schedules", json=body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert message.startswith(f"{field}: ") and why in message, message
    assert (await server.admin.get("/schedules")).json() == {"schedules": []}


async def test_a_schedule_is_created_listed_described_paused_resumed_triggered_backfilled_and_deleted(tmp_path, nursery) -> None:  # type: ignore[no-untyped-def]
    server = await start_in_process(nursery, SERVICES, tmp_path / "data")
    admin = server.admin
    created = await admin.post(
        "/schedules", json={"id": "chimes", "every": "1s", "target": "Clock/chime", "overlap": "allow_all"}
    )
    assert created.status_code == 201 and created.headers["location"] == "/schedules/chimes"
    view = created.json()
    assert view["every"] == "1s" and view["overlap"] == "allow_all" and view["catchup_window"] == "1h" and view["source"] == "api"
    assert len(view["next_fires"]) == 5 and view["last_fires"] == []
    created_at = datetime.datetime.fromisoformat(view["created_at"].replace("Z", "+00:00"))
    assert (
        await admin.post("/schedules", json={"id": "chimes", "every": "1s", "target": "Clock/chime", "overlap": "allow_all"})
    ).status_code == 200
    different = {"id": "chimes", "every": "2s", "target": "Clock/chime", "overlap": "allow_all"}
    conflict = await admin.post("/schedules", json=different)
    assert conflict.status_code == 409 and "force" in conflict.json()["message"]

    async def fired(count: int) -> bool:
        return len((await admin.get("/schedules/chimes")).json()["last_fires"]) >= count

    await wait_until(lambda: fired(2), timeout=30)
    described = (await admin.get("/schedules/chimes")).json()
    newest = described["last_fires"][0]
    assert (
        newest["by"] == "schedule"
        and newest["invocation_id"].startswith("inv_1")
        and newest["status"] in ("running", "ready", "completed")
    )
    invocation = (await admin.get(f"/invocations/{described['last_fires'][-1]['invocation_id']}")).json()
    assert invocation["status"] == "completed" and invocation["idempotency_key"].startswith("chimes@")
    listed = (await admin.get("/schedules")).json()["schedules"]
    assert [s["id"] for s in listed] == ["chimes"] and listed[0]["last_fire"]["invocation_id"].startswith("inv_1")

    paused = await admin.patch("/schedules/chimes/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True and paused.json()["next_fires"] == []
    assert paused.json()["next_fire_at"] is None
    resumed = (await admin.patch("/schedules/chimes/resume")).json()
    assert resumed["paused"] is False and len(resumed["next_fires"]) == 5

    triggered = await admin.patch("/schedules/chimes/trigger")
    assert triggered.status_code == 200 and triggered.json()["outcome"] == "fired"
    trigger_id = triggered.json()["invocation_id"]
    attached = await server.ingress.get(f"/restate/attach/{trigger_id}")
    assert attached.status_code == 200 and attached.json() == triggered.json()["tick"], "the handler's input is the tick's time"

    second = created_at.replace(microsecond=0)  # ticks fall on whole seconds; these three came before the schedule was
    before = (second - datetime.timedelta(seconds=3)).isoformat()
    just_before = (second - datetime.timedelta(seconds=1)).isoformat()
    filled = await admin.post("/schedules/chimes/backfill", json={"from": before, "to": just_before})
    assert filled.status_code == 200 and filled.json()["fired"] == 3 and filled.json()["already_fired"] == 0
    again = (await admin.post("/schedules/chimes/backfill", json={"from": before, "to": just_before})).json()
    assert again["fired"] == 0 and again["already_fired"] == 3, "a tick fires once however often it is backfilled"
    future = await admin.post("/schedules/chimes/backfill", json={"from": before, "to": "2999-01-01T00:00:00Z"})
    assert future.status_code == 400 and future.json()["message"].startswith("to: ")
    assert (await admin.post("/schedules/chimes/backfill", json={"to": just_before})).json()["message"].startswith("from: ")

    replaced = await admin.post("/schedules", json={**different, "force": True})
    assert replaced.status_code == 200 and replaced.json()["every"] == "2s" and replaced.json()["fired"] >= 6, (
        "replacing keeps its history"
    )
    assert (await admin.delete("/schedules/chimes")).json() == {"id": "chimes", "deleted": True}
    assert (await admin.get("/schedules/chimes")).status_code == 404
    assert (await admin.delete("/schedules/chimes")).status_code == 404
    assert (await admin.patch("/schedules/chimes/pause")).status_code == 404
    assert (await admin.get("/schedules/chimes/pause")).status_code == 405


async def test_a_failed_tick_shows_its_failure_and_an_object_schedule_runs_on_its_key(tmp_path, nursery) -> None:  # type: ignore[no-untyped-def]
    server = await start_in_process(nursery, SERVICES, tmp_path / "data")
    admin = server.admin
    assert (await admin.post("/schedules", json={"id": "sad", "every": "1h", "target": "Clock/fail"})).status_code == 201
    fired = (await admin.patch("/schedules/sad/trigger")).json()
    await server.ingress.get(f"/restate/attach/{fired['invocation_id']}")
    [fire] = (await admin.get("/schedules/sad")).json()["last_fires"]
    assert (
        fire["by"] == "trigger" and fire["outcome"] == "failure" and fire["failure"] == {"code": 418, "message": "no chime today"}
    )
    assert (
        await admin.post(
            "/schedules", json={"id": "expiry", "cron": "0 0 * * *", "timezone": "Asia/Tokyo", "target": "Cart/c-1/expire"}
        )
    ).status_code == 201
    view = (await admin.get("/schedules/expiry")).json()
    assert view["target"] == "Cart/c-1/expire" and all(tick.endswith("T00:00:00+09:00") for tick in view["next_fires"])
    expired = (await admin.patch("/schedules/expiry/trigger")).json()
    invocation = (await admin.get(f"/invocations/{expired['invocation_id']}")).json()
    assert invocation["target"] == "Cart/c-1/expire"


def durio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "durio.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


async def run_durio(*args: str) -> subprocess.CompletedProcess[str]:
    return await anyio.to_thread.run_sync(lambda: durio(*args))


async def test_the_durio_schedules_command_creates_lists_describes_controls_and_deletes(tmp_path, nursery) -> None:  # type: ignore[no-untyped-def]
    server = await start_in_process(nursery, SERVICES, tmp_path / "data")
    admin = server.running.admin_url.removeprefix("http://")
    created = await run_durio(
        "schedules",
        "create",
        "nightly",
        "--cron",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--target",
        "Clock/chime",
        "--input",
        '"hello"',
        "--admin",
        admin,
        "--json",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["input"] == "hello"
    bad = await run_durio("schedules", "create", "broken", "--cron", "0 25 * * *", "--target", "Clock/chime", "--admin", admin)
    assert bad.returncode == 1 and "cron:" in bad.stderr and "Bad hour" in bad.stderr
    listing = await run_durio("schedules", "list", "--admin", admin)
    assert (
        listing.returncode == 0
        and "nightly" in listing.stdout
        and "30 2 * * *" in listing.stdout
        and "broken" not in listing.stdout
    )
    triggered = await run_durio("schedules", "trigger", "nightly", "--admin", admin)
    assert triggered.returncode == 0 and "fired inv_1" in triggered.stdout
    paused = await run_durio("schedules", "pause", "nightly", "--admin", admin)
    assert paused.stdout.strip() == "nightly: paused"
    resumed = await run_durio("schedules", "resume", "nightly", "--admin", admin)
    assert resumed.stdout.strip() == "nightly: active"
    filled = await run_durio(
        "schedules", "backfill", "nightly", "--from", "2026-03-28T00:00:00Z", "--to", "2026-03-31T00:00:00Z", "--admin", admin
    )
    assert filled.returncode == 0 and filled.stdout.strip() == "nightly: 3 fired, 0 had fired already, 0 skipped, 0 buffered", (
        filled.stdout + filled.stderr
    )
    described = await run_durio("schedules", "describe", "nightly", "--admin", admin)
    assert described.returncode == 0
    assert "2026-03-29T03:00:00+02:00" in described.stdout, "the backfilled tick of the DST night, at 03:00 summer time"
    assert "trigger" in described.stdout and "backfill" in described.stdout
    deleted = await run_durio("schedules", "delete", "nightly", "--admin", admin)
    assert deleted.stdout.strip() == "nightly: deleted"
    gone = await run_durio("schedules", "describe", "nightly", "--admin", admin)
    assert gone.returncode == 1 and "404" in gone.stderr
