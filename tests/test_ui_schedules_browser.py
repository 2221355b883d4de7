"""The UI's Schedules tab in a real headless Chromium, like tests/test_ui_browser.py: the list with each
schedule's next and last fire, pause/resume/trigger from the page, and a schedule's page with its next fires
and its latest fires linking to their invocations. A screenshot is saved under test-artifacts/."""

from __future__ import annotations

import re

import httpx
import pytest
import trio
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import TEST_APPS, ServerProcess
from tests.test_ui_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium_path

APP = TEST_APPS / "schedule_soak_app.py"  # Beat/tick, with @scheduled(every="2s", id="beat")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("ui-schedules")
    process = ServerProcess(APP, folder / "data", folder / "server.log", {"BEAT_LOG": str(folder / "beats.log")})
    trio.run(process.start)
    with httpx.Client(base_url=process.admin_url, timeout=30) as admin:
        created = admin.post(
            "/schedules", json={"id": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "target": "Beat/tick"}
        )
        assert created.status_code == 201, created.text
        for _ in range(200):  # the declared schedule fires every 2 s: wait for two completed fires
            fires = admin.get("/schedules/beat").json()["last_fires"]
            if sum(fire.get("outcome") == "success" for fire in fires) >= 2:
                break
            trio.run(trio.sleep, 0.1)
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def page(server):  # type: ignore[no-untyped-def]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


def admin_get(server: ServerProcess, path: str) -> dict:
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        return admin.get(path).json()


def test_the_schedules_tab_lists_each_schedule_with_its_timing_state_and_last_fire(page: Page, server: ServerProcess) -> None:
    page.goto(f"{server.admin_url}/ui/")
    page.locator("nav a[data-nav='schedules']").click()
    expect(page).to_have_url(re.compile(r"#/schedules$"))
    beat = page.locator("#schedules tr[data-id='beat']")
    expect(beat).to_contain_text("every 2s")
    expect(beat.locator(".badge.code")).to_have_text("code")
    expect(beat.locator(".last-fire a")).to_have_attribute("href", re.compile(r"^#/invocations/inv_1"))
    nightly = page.locator("#schedules tr[data-id='nightly']")
    expect(nightly).to_contain_text("30 2 * * *")
    expect(nightly).to_contain_text("Europe/Berlin")
    expect(nightly).to_contain_text("Beat/tick")
    expect(nightly.locator(".state")).to_have_text("active")


def test_pause_resume_and_trigger_from_the_tab_act_on_the_schedule(page: Page, server: ServerProcess) -> None:
    page.goto(f"{server.admin_url}/ui/#/schedules")
    nightly = page.locator("#schedules tr[data-id='nightly']")
    nightly.locator("button[data-action='pause']").click()
    expect(nightly.locator(".state")).to_have_text("paused")
    expect(page.locator("#schedule-note")).to_have_text("nightly: paused")
    assert admin_get(server, "/schedules/nightly")["paused"] is True
    nightly.locator("button[data-action='resume']").click()
    expect(nightly.locator(".state")).to_have_text("active")
    assert admin_get(server, "/schedules/nightly")["paused"] is False
    nightly.locator("button[data-action='trigger']").click()
    expect(page.locator("#schedule-note")).to_have_text(re.compile(r"^triggered: fired inv_1\w+$"))
    fired = page.locator("#schedule-note").inner_text().split()[-1]
    [fire] = admin_get(server, "/schedules/nightly")["last_fires"]
    assert fire["by"] == "trigger" and fire["invocation_id"] == fired
    expect(nightly.locator(".last-fire a")).to_have_text(fired)


def test_a_schedules_page_shows_its_next_fires_in_its_zone_and_links_its_fires_to_their_invocations(
    page: Page, server: ServerProcess
) -> None:
    page.goto(f"{server.admin_url}/ui/#/schedules/nightly")
    next_fires = page.locator("#next-fires li")
    expect(next_fires).to_have_count(5)
    for text in next_fires.all_inner_texts():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT02:30:00\+0[12]:00", text), text  # 02:30 Berlin time, with its offset
    expect(page.locator("#schedule-summary")).to_contain_text("through the admin API")

    page.goto(f"{server.admin_url}/ui/#/schedules/beat")
    expect(page.locator("#schedule-summary")).to_contain_text("in code (@scheduled)")
    rows = page.locator("#last-fires tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 2
    expect(page.locator("#last-fires [data-status='completed']").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "schedule-beat.png"), full_page=True)
    link = page.locator("#last-fires tbody tr").last.locator("a")
    invocation_id = link.inner_text()
    link.click()
    expect(page).to_have_url(re.compile(re.escape(f"#/invocations/{invocation_id}") + "$"))
    expect(page.locator("h1")).to_have_text(invocation_id)
    expect(page.locator("#summary")).to_contain_text("Beat/tick")
    expect(page.locator("#summary")).to_contain_text("beat@")  # its idempotency key: the schedule and its tick
