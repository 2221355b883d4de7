"""Operating durio from the UI, in a real headless Chromium: register a deployment, act on invocations.

The seed's flow, done in the browser: `durio server` runs alone, the tour runs
as a deployment (its own process, hypercorn serving `durio.app`), the
Deployments page registers it by its URL, the seed's first curl runs, and the
invocation opened from the list shows its steps. Then a retrying saga is
cancelled from the list (its compensations show on its page), a retrying
invocation is paused and resumed, and a deployment is removed (refused while
an invocation still needs it). Screenshots go to a temporary folder, named in
the test output.
"""

from __future__ import annotations

import re
import sys
import typing

import httpx
import pytest
import trio
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ROOT, ServerProcess, free_port
from tests.otlp_receiver import OtlpReceiver, running_receiver
from tests.remote_peers import Peer, hypercorn_deployment
from tests.test_ui_browser import CHROMIUM_FLAGS, chromium_path

SEED_REQUEST = {"userId": "user-123", "creditCard": "4111111111111111", "subscriptions": ["Hulu", "Prime"]}


class Setup(typing.NamedTuple):
    server: ServerProcess
    tour: Peer
    spare: Peer  # a second deployment that no invocation uses
    screenshots: typing.Any
    traces: OtlpReceiver  # the server exports its traces here


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Setup]:
    folder = tmp_path_factory.mktemp("operate")
    screenshots = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {screenshots}")
    receiver_context = running_receiver()
    traces = receiver_context.__enter__()
    server = ServerProcess(
        None, folder / "data", folder / "server.log", {"OTEL_EXPORTER_OTLP_ENDPOINT": traces.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    )
    port = free_port()
    tour = Peer(
        [sys.executable, str(ROOT / "examples" / "tour" / "app.py")],
        folder / "tour.log",
        port,
        {"TOUR_BIND": f"127.0.0.1:{port}", "TOUR_NETFLIX_DOWN": "1"},
    )
    spare = hypercorn_deployment("tests.apps.cancel_saga_app:app", folder / "spare.log")
    try:
        trio.run(server.start)
        trio.run(tour.start)
        trio.run(spare.start)
        yield Setup(server, tour, spare, screenshots, traces)
    finally:
        for peer in (tour, spare):
            peer.stop()
        if server.process is not None:
            server.terminate()
        receiver_context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def page(setup: Setup) -> typing.Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


def admin(setup: Setup) -> httpx.Client:
    return httpx.Client(base_url=setup.server.admin_url, timeout=30)


def ensure_registered(setup: Setup) -> None:
    with admin(setup) as client:
        response = client.post("/deployments", json={"uri": setup.tour.url, "use_http_11": True})
        assert response.status_code in (200, 201), response.text


def send(setup: Setup, path: str, body: typing.Any) -> str:
    with httpx.Client(base_url=setup.server.ingress_url, timeout=30) as client:
        response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    return response.json()["invocationId"]


def wait_for_retries(setup: Setup, invocation_id: str, count: int = 1) -> None:
    with admin(setup) as client:
        for _ in range(400):
            if client.get(f"/invocations/{invocation_id}").json()["retry_count"] >= count:
                return
            trio.run(trio.sleep, 0.05)
    raise AssertionError(f"{invocation_id} did not retry {count} times")


def confirm(page: Page, label: str) -> None:
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-yes")).to_have_text(label)
    dialog.locator("#confirm-yes").click()
    expect(dialog).to_have_count(0)


def test_the_seeds_flow_register_the_tour_from_the_ui_call_it_and_open_the_invocation(page: Page, setup: Setup) -> None:
    page.goto(f"{setup.server.admin_url}/ui/#/deployments")
    expect(page.locator("#deployment-list .empty")).to_be_visible()
    page.locator("#register-uri").fill(setup.tour.url)
    page.locator("#register-http11").check()
    page.locator("#register-button").click()
    answer = page.locator("#deployment-answer")
    expect(answer).to_have_attribute("data-status", "201")
    expect(answer).to_contain_text("registered dp_")
    expect(answer).to_contain_text("SubscriptionService")
    row = page.locator("#deployments tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".endpoint")).to_have_text(setup.tour.url)
    expect(row).to_contain_text("RequestResponse")
    expect(row).to_contain_text("HTTP/1.1")
    expect(row.locator(".services")).to_contain_text("SubscriptionSaga")
    page.screenshot(path=str(setup.screenshots / "1-deployment-registered.png"), full_page=True)
    with admin(setup) as client:
        [deployment] = client.get("/deployments").json()["deployments"]
    assert deployment["uri"] == setup.tour.url and "SubscriptionService" in {s["name"] for s in deployment["services"]}

    # The seed's first curl, against durio's ingress: the tour's deployment runs it.
    with httpx.Client(base_url=setup.server.ingress_url, timeout=30) as client:
        called = client.post("/restate/call/SubscriptionService/add", json=SEED_REQUEST)
    assert called.status_code == 200, called.text
    invocation_id = called.headers["x-restate-id"]

    page.locator("nav a[data-nav='invocations']").click()
    link = page.locator(f"tr[data-id='{invocation_id}'] a", has_text=invocation_id)
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("h1")).to_have_text(invocation_id)
    expect(page.locator("#summary")).to_contain_text("SubscriptionService/add")
    expect(page.locator("#summary .status")).to_have_attribute("data-status", "completed")
    runs = page.locator("#timeline .step.run")
    expect(runs).to_have_count(3)
    assert [runs.nth(i).get_attribute("data-name") for i in range(3)] == ["pay", "add-Hulu", "add-Prime"]
    expect(page.locator("#timeline .step.run .duration").first).to_have_text(re.compile(r"^\d+ ms$"))
    # Its trace: the id the page shows is the trace its spans were exported in, rooted at the invocation.
    spans = setup.traces.wait_for(
        lambda spans: any(
            s.attributes.get("restate.invocation.id") == invocation_id and s.name == "SubscriptionService/add" for s in spans
        )
    )
    [root] = [s for s in spans if s.name == "SubscriptionService/add" and s.attributes["restate.invocation.id"] == invocation_id]
    expect(page.locator("#trace-id")).to_have_text(root.trace_id)
    assert root.parent_span_id is None
    steps = {s.name for s in spans if s.trace_id == root.trace_id}
    assert {"attempt", "run pay", "run add-Hulu", "run add-Prime"} <= steps, steps
    page.screenshot(path=str(setup.screenshots / "2-seed-invocation.png"), full_page=True)
    assert (setup.screenshots / "2-seed-invocation.png").stat().st_size > 10_000


def test_cancel_a_retrying_saga_from_the_list_and_see_its_compensations(page: Page, setup: Setup) -> None:
    ensure_registered(setup)
    saga = send(setup, "/restate/send/SubscriptionSaga/add", dict(SEED_REQUEST, subscriptions=["Hulu", "Netflix"]))
    wait_for_retries(setup, saga)
    page.goto(f"{setup.server.admin_url}/ui/#/invocations?service=SubscriptionSaga")
    row = page.locator(f"tr[data-id='{saga}']")
    expect(row.locator(".status")).to_have_attribute("data-status", re.compile("backing-off|running"))
    expect(row.locator("button[data-action='purge']")).to_have_count(0)  # only what its status allows
    row.locator("button[data-action='cancel']").click()
    expect(page.locator("#confirm")).to_contain_text(f"Cancel {saga}?")
    page.locator("#confirm-no").click()  # backing out does nothing
    expect(page.locator("#confirm")).to_have_count(0)
    expect(page.locator("#action-answer")).to_be_hidden()
    row.locator("button[data-action='cancel']").click()
    confirm(page, "Cancel")
    answer = page.locator("#action-answer")
    expect(answer).to_have_attribute("data-status", "202")
    expect(answer).to_contain_text(f"cancel: accepted for {saga}")
    expect(row.locator(".status")).to_have_text("failed", timeout=10_000)  # the list refreshed itself
    page.screenshot(path=str(setup.screenshots / "3-saga-cancelled-list.png"), full_page=True)

    row.locator("a", has_text=saga).click()
    expect(page.locator("#summary")).to_contain_text("canceled")
    expect(page.locator("#timeline .step.cancelled")).to_have_count(1)
    compensations = page.locator("#timeline .step.compensation")
    expect(compensations).to_have_count(3)
    assert [compensations.nth(i).get_attribute("data-name") for i in range(3)] == ["undo-Netflix", "undo-Hulu", "undo-pay"]
    page.screenshot(path=str(setup.screenshots / "4-saga-compensations.png"), full_page=True)

    # Purged from its page: the page goes back to the list, the answer stays.
    page.locator("#actions button[data-action='purge']").click()
    confirm(page, "Purge")
    expect(answer).to_have_attribute("data-status", "200")
    expect(page).to_have_url(re.compile(r"#/invocations$"))
    expect(answer).to_contain_text(f"purge: done for {saga}")
    with admin(setup) as client:
        assert client.get(f"/invocations/{saga}").status_code == 404


def test_pause_and_resume_a_retrying_invocation_from_its_page(page: Page, setup: Setup) -> None:
    ensure_registered(setup)
    netflix = send(setup, "/restate/send/SubscriptionService/add", dict(SEED_REQUEST, subscriptions=["Netflix"]))
    wait_for_retries(setup, netflix)
    page.goto(f"{setup.server.admin_url}/ui/#/invocations/{netflix}")
    status = page.locator("#summary .status")
    expect(status).to_have_attribute("data-status", re.compile("backing-off|running"))
    page.locator("#actions button[data-action='pause']").click()
    confirm(page, "Pause")
    answer = page.locator("#action-answer")
    expect(answer).to_have_attribute("data-status", "202")
    expect(status).to_have_attribute("data-status", "paused", timeout=10_000)
    retries = int(page.locator("#retry-count").inner_text())
    page.screenshot(path=str(setup.screenshots / "5-paused.png"), full_page=True)

    expect(page.locator("#actions button[data-action='pause']")).to_have_count(0)
    page.locator("#actions button[data-action='resume']").click()
    confirm(page, "Resume")
    expect(answer).to_contain_text(f"resume: done for {netflix}")
    expect(answer).to_have_class(re.compile(r"\bok\b"))
    expect(status).to_have_attribute("data-status", re.compile("backing-off|running"), timeout=10_000)
    expect(page.locator("#retry-count")).not_to_have_text(str(retries), timeout=10_000)  # it tries again

    page.locator("#actions button[data-action='kill']").click()
    confirm(page, "Kill")
    expect(status).to_have_attribute("data-status", "completed", timeout=10_000)


def test_a_deployment_is_removed_only_when_no_invocation_needs_it(page: Page, setup: Setup) -> None:
    ensure_registered(setup)
    waiting = send(setup, "/restate/send/SubscriptionService/add", dict(SEED_REQUEST, subscriptions=["Netflix"]))
    with admin(setup) as client:
        spare = client.post("/deployments", json={"uri": setup.spare.url})
        assert spare.status_code == 201, spare.text
    spare_id, tour_id = spare.json()["id"], None
    page.goto(f"{setup.server.admin_url}/ui/#/deployments")
    rows = page.locator("#deployments tbody tr")
    expect(rows).to_have_count(2)
    tour_row = rows.filter(has_text=setup.tour.url)
    tour_id = tour_row.get_attribute("data-id")
    tour_row.locator("button[data-remove]").click()
    confirm(page, "Remove")
    answer = page.locator("#deployment-answer")
    expect(answer).to_have_attribute("data-status", "409")
    expect(answer).to_contain_text("still needed by")
    expect(answer).to_contain_text("unfinished invocation")
    expect(rows).to_have_count(2)
    page.screenshot(path=str(setup.screenshots / "6-removal-refused.png"), full_page=True)

    page.locator(f"#deployments tr[data-id='{spare_id}'] button[data-remove]").click()
    confirm(page, "Remove")
    expect(answer).to_have_attribute("data-status", "202")
    expect(answer).to_contain_text(f"removed {spare_id}")
    expect(rows).to_have_count(1)
    with admin(setup) as client:
        assert {d["id"] for d in client.get("/deployments").json()["deployments"]} == {tour_id}
        assert client.get("/services/CancelSaga").status_code == 404
        assert client.get("/services/SubscriptionService").status_code == 200
        assert client.get(f"/invocations/{waiting}").json()["status"] != "completed"
        client.patch(f"/invocations/{waiting}/kill")
