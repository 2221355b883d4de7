"""The seed's UI steps in a real headless Chromium (Debian's, installed by `make test`).

Netflix retrying shows its retries and error; the Disney saga shows its
compensations in order; UserSubscriptions/user-123 shows its state. The list
refreshes live and its status and service filters change what it lists; the
timeline shows each step's duration, a sleep with its wake-up time, and calls
that link to their callee. A screenshot of the invocation page is saved under
test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime

import httpx
import pytest
import anyio
import trio
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ROOT, TOUR_APP, ServerProcess

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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
        netflix = client.post(
            "/restate/send/SubscriptionService/add", json=dict(request, subscriptions=["Hulu", "Prime", "Netflix"])
        )
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
            trio.run(anyio.sleep, 0.05)
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


def admin_view(tour, invocation_id: str) -> dict:  # type: ignore[no-untyped-def]
    server, _ = tour
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        return admin.get(f"/invocations/{invocation_id}").json()


def admin_ids(tour, **filters: str) -> set[str]:  # type: ignore[no-untyped-def]
    server, _ = tour
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        return {inv["id"] for inv in admin.get("/invocations", params=dict(filters, limit="200")).json()["invocations"]}


def commands(journal: list[dict]) -> list[dict]:
    """The journal entries the timeline draws a step for, in its order."""
    return [entry for entry in journal if entry["type"] not in ("completion", "signal")]


def start_payment_with_timeout(tour, order: str) -> str:  # type: ignore[no-untyped-def]
    """PaymentsWithTimeout/process: a run, then a 30 s sleep raced against an awakeable nobody resolves."""
    server, _ = tour
    with httpx.Client(base_url=server.ingress_url, timeout=30) as client:
        sent = client.post(
            "/restate/send/PaymentsWithTimeout/process",
            json={"amount": 5, "currency": "EUR", "customerId": "c-1", "orderId": order},
        )
    assert sent.status_code == 202, sent.text
    return sent.json()["invocationId"]


def test_the_invocations_list_refreshes_live(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    open_ui(page, tour, "/invocations?service=PaymentsWithTimeout")
    expect(page.locator("#count")).to_contain_text("shown")
    page.evaluate("window.__notReloaded = true")
    invocation_id = start_payment_with_timeout(tour, "live-refresh")
    row = page.locator(f"tr[data-id='{invocation_id}']")
    expect(row).to_be_visible(timeout=10_000)  # the list polls the admin API every 2 s
    expect(row).to_contain_text("PaymentsWithTimeout/process")
    expect(page.locator("#refresh-status")).to_contain_text("updated")
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded, not refreshed in place"
    assert page.url.endswith("#/invocations?service=PaymentsWithTimeout")


def test_the_status_and_service_filters_change_what_is_listed(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    _, ids = tour
    netflix, disney = page.locator(f"tr[data-id='{ids['netflix']}']"), page.locator(f"tr[data-id='{ids['disney']}']")
    rows = page.locator("#invocations tbody tr")
    open_ui(page, tour, "/invocations")
    expect(netflix).to_be_visible()
    expect(disney).to_be_visible()

    page.locator("#f-status").select_option("backing-off")
    expect(page).to_have_url(re.compile(r"#/invocations\?status=backing-off$"))
    expect(disney).to_have_count(0)
    expect(netflix).to_be_visible(timeout=10_000)
    expect(page.locator("#f-status")).to_have_value("backing-off")
    expect(rows.filter(has=page.locator(".status:not([data-status='backing-off'])"))).to_have_count(0)

    page.locator("#f-status").select_option("")
    expect(disney).to_be_visible()
    page.locator("#f-service").select_option("SubscriptionSaga")
    expect(page).to_have_url(re.compile(r"#/invocations\?service=SubscriptionSaga$"))
    expect(netflix).to_have_count(0)
    expect(disney).to_be_visible()
    expect(page.locator("#f-service")).to_have_value("SubscriptionSaga")
    expect(rows).to_have_count(len(admin_ids(tour, service="SubscriptionSaga")))
    expect(rows.filter(has_not_text="SubscriptionSaga/")).to_have_count(0)

    page.locator("#f-status").select_option("backing-off")  # both filters at once: no saga is backing off
    expect(page).to_have_url(re.compile(r"status=backing-off&service=SubscriptionSaga$"))
    expect(page.locator("#list .empty")).to_have_text("No invocations match.")
    page.locator("#f-status").select_option("completed")
    expect(disney).to_be_visible()
    expect(disney.locator(".status")).to_have_text("failed")


def test_the_timeline_shows_each_steps_duration(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    _, ids = tour
    journal = commands(admin_view(tour, ids["disney"])["journal"])
    open_ui(page, tour, f"/invocations/{ids['disney']}")
    steps = page.locator("#timeline .step")
    expect(steps).to_have_count(len(journal))
    timed = [(i, entry) for i, entry in enumerate(journal) if "duration_ms" in entry]
    assert len(timed) >= 8  # pay, add-Hulu, add-Prime, add-Disney and the four compensations
    for i, entry in timed:
        expect(steps.nth(i)).to_have_attribute("data-type", entry["type"])
        expect(steps.nth(i).locator(".duration")).to_have_text(f"{entry['duration_ms']} ms")
    # A step still waiting for its result says so instead of a duration.
    open_ui(page, tour, f"/invocations/{ids['netflix']}")
    expect(page.locator("#timeline .step.run.pending .duration")).to_have_text("waiting")


def test_the_timeline_shows_a_sleep_and_its_wake_up_time(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    invocation_id = start_payment_with_timeout(tour, "sleeper")
    open_ui(page, tour, f"/invocations/{invocation_id}")
    sleep = page.locator("#timeline .step.sleep")
    expect(sleep).to_have_count(1, timeout=10_000)  # the page refreshes until the sleep is journaled
    entry = next(e for e in admin_view(tour, invocation_id)["journal"] if e["type"] == "sleep")
    slept = datetime.fromisoformat(entry["wake_up_at"][:19]) - datetime.fromisoformat(entry["at"][:19])
    assert 29 <= slept.total_seconds() <= 31  # the tour's 30 s timeout
    wake_up = page.evaluate("iso => new Date(iso).toLocaleString()", entry["wake_up_at"])
    expect(sleep.locator(".detail")).to_contain_text(f"until {wake_up}")
    expect(sleep).to_have_class(re.compile(r"\bpending\b"))
    expect(sleep.locator(".duration")).to_have_text("waiting")
    expect(page.locator("#timeline .step.run[data-name='pay'] .duration")).to_have_text(re.compile(r"^\d+ ms$"))


def test_calls_link_to_their_callee(page: Page, tour) -> None:  # type: ignore[no-untyped-def]
    server, _ = tour
    with httpx.Client(base_url=server.ingress_url, timeout=30) as client:
        bought = client.post(
            "/restate/call/ConcertTicketingService/buy",
            json={"ticketId": "t-1", "price": 10, "customerEmail": "a@example.com", "concertDate": "2031-01-01T20:00:00Z"},
        )
    buyer = bought.headers["x-restate-id"]
    journal = admin_view(tour, buyer)["journal"]
    [call] = [e for e in journal if e["type"] == "call"]
    sends = {e["target"]: e for e in journal if e["type"] == "one_way_call"}
    assert call["target"] == "PaymentService/charge"
    open_ui(page, tour, f"/invocations/{buyer}")
    # The one-way and delayed sends link to their callees too; the delayed one says when it will run.
    for target in ("EmailService/emailTicket", "EmailService/sendReminder"):
        step = page.locator("#timeline .step.one-way-call", has_text=target)
        expect(step.locator("a.callee")).to_have_attribute("href", f"#/invocations/{sends[target]['callee_id']}")
    expect(page.locator("#timeline .step.one-way-call", has_text="EmailService/sendReminder")).to_contain_text("scheduled for")
    link = page.locator("#timeline .step.call a.callee")
    expect(link).to_have_count(1)
    expect(link).to_have_text(call["callee_id"])
    expect(page.locator("#timeline .step.call .duration")).to_have_text(f"{call['duration_ms']} ms")
    link.click()
    expect(page).to_have_url(re.compile(re.escape(f"#/invocations/{call['callee_id']}") + "$"))
    expect(page.locator("h1")).to_have_text(call["callee_id"])
    expect(page.locator("#summary")).to_contain_text("PaymentService/charge")
    invoked_by = page.locator("#summary a", has_text=buyer)
    expect(invoked_by).to_have_attribute("href", f"#/invocations/{buyer}")
    invoked_by.click()
    expect(page.locator("h1")).to_have_text(buyer)
