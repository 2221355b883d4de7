"""The seed's UI steps in a real headless Chromium (Debian's, installed by `make test`).

Netflix retrying shows its retries and error; the Disney saga shows its
compensations in order; UserSubscriptions/user-123 shows its state. A
screenshot of the invocation page is saved under test-artifacts/.
"""

from __future__ import annotations

import os

import shutil

import httpx
import pytest
import trio
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ROOT, TOUR_APP, ServerProcess

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("DURIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package; run it, or set DURIO_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The tour, with a retrying Netflix subscription, a failed Disney saga and some object state."""
    folder = tmp_path_factory.mktemp("ui")
    server = ServerProcess(TOUR_APP, folder / "data", folder / "server.log", {"TOUR_NETFLIX_DOWN": "1"})
    trio.run(server.start)
    ids: dict[str, str] = {}
    with httpx.Client(base_url=server.ingress_url, timeout=30) as client:
        request = {"userId": "user-123", "creditCard": "4111111111111111"}
        netflix = client.post("/restate/send/SubscriptionService/add", json=dict(request, subscriptions=["Hulu", "Prime", "Netflix"]))
        ids["netflix"] = netflix.json()["invocationId"]
        disney = client.post("/restate/call/SubscriptionSaga/add", json=dict(request, subscriptions=["Hulu", "Prime", "Disney"]))
        assert disney.status_code == 400
        ids["disney"] = disney.headers["x-restate-id"]
        for subscription in ("Hulu", "Prime", "Disney"):
            client.post("/restate/call/UserSubscriptions/user-123/add", json=subscription)
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        for _ in range(200):
            if admin.get(f"/invocations/{ids['netflix']}").json()["retry_count"] >= 3:
                break
            trio.run(trio.sleep, 0.05)
    yield server, ids
    server.terminate()


@pytest.fixture(scope="module")
def page(tour):  # type: ignore[no-untyped-def]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


def open_ui(page: Page, tour, fragment: str) -> None:  # type: ignore[no-untyped-def]
    server, _ = tour
    page.goto(f"{server.admin_url}/ui/#{fragment}")


def test_the_invocations_list_shows_the_retrying_netflix_invocation(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    _, ids = tour
    open_ui(page, tour, "/invocations?service=SubscriptionService")
    row = page.locator(f"tr[data-id='{ids['netflix']}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text("Netflix API is down")
    expect(row.locator(".status")).to_have_attribute("data-status", "backing-off")


def test_the_netflix_invocation_page_shows_its_retries_and_error(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    _, ids = tour
    open_ui(page, tour, f"/invocations/{ids['netflix']}")
    expect(page.locator("#last-error")).to_contain_text("Netflix API is down")
    expect(page.locator("#last-error")).to_contain_text("add-Netflix")
    assert int(page.locator("#retry-count").inner_text()) >= 3
    expect(page.locator("#retries .retry").first).to_contain_text("Netflix API is down")
    steps = page.locator("#timeline .step.run .label")
    expect(steps).to_have_count(4)
    expect(page.locator("#timeline .step.run.pending")).to_have_count(1)  # add-Netflix has no result yet
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "invocation-netflix-retrying.png"), full_page=True)


def test_the_disney_saga_page_shows_its_compensations_in_order(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    _, ids = tour
    open_ui(page, tour, f"/invocations/{ids['disney']}")
    expect(page.locator("#timeline .step.failed")).to_have_count(1)
    expect(page.locator("#timeline .step.failed")).to_have_attribute("data-name", "add-Disney")
    compensations = page.locator("#timeline .step.compensation")
    expect(compensations).to_have_count(4)
    names = [compensations.nth(i).get_attribute("data-name") for i in range(4)]
    assert names == ["undo-Disney", "undo-Prime", "undo-Hulu", "undo-pay"]
    expect(page.locator("#summary")).to_contain_text("Disney subscription is not available")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "invocation-disney-saga.png"), full_page=True)
    assert (ARTIFACTS / "invocation-disney-saga.png").stat().st_size > 10_000


def test_the_state_tab_shows_user_123s_subscriptions(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    open_ui(page, tour, "/state/UserSubscriptions")
    expect(page.locator("#state-keys a", has_text="user-123")).to_be_visible()
    page.locator("#state-keys a", has_text="user-123").click()
    row = page.locator("#state tr[data-name='subscriptions']")
    expect(row).to_be_visible()
    text = row.inner_text()
    assert '"Hulu"' in text and '"Prime"' in text and '"Disney"' in text
    expect(page.locator("#state tr[data-name='lastUpdated']")).to_be_visible()


def test_calls_link_to_their_callee(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    server, _ = tour
    with httpx.Client(base_url=server.ingress_url, timeout=30) as client:
        bought = client.post("/restate/call/ConcertTicketingService/buy", json={
            "ticketId": "t-1", "price": 10, "customerEmail": "a@example.com", "concertDate": "2031-01-01T20:00:00Z"})
    open_ui(page, tour, f"/invocations/{bought.headers['x-restate-id']}")
    link = page.locator("#timeline .step.call a.callee")
    expect(link).to_have_count(1)
    link.click()
    expect(page.locator("#summary")).to_contain_text("PaymentService/charge")


