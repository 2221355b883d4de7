"""The seed's "Getting Started", "Durable Execution" and "Sagas" sections, against the tour's services."""

from __future__ import annotations

import re


from tests.conftest import TOUR_APP, wait_until

SUBSCRIBE = {"userId": "user-123", "creditCard": "4111111111111111", "subscriptions": ["Hulu", "Prime"]}


def created_lines(output: str) -> list[str]:
    return re.findall(r">>> Created subscription (\w+) for user (\S+)", output)


async def test_getting_started_creates_the_payment_and_each_subscription(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    async with server.client() as client:
        response = await client.post("/restate/call/SubscriptionService/add", json=SUBSCRIBE)
    assert response.status_code == 200, response.text
    assert response.headers["x-restate-id"].startswith("inv_1")
    output = server.output()
    assert output.count(">>> Creating recurring payment") == 1
    assert created_lines(output) == [("Hulu", "user-123"), ("Prime", "user-123")]
    assert server.terminate() == 0


async def test_netflix_retries_until_fixed_then_completes_without_redoing_done_steps(server_process) -> None:
    server = server_process(TOUR_APP, env={"TOUR_NETFLIX_DOWN": "1"})
    await server.start()
    request = dict(SUBSCRIBE, subscriptions=["Hulu", "Prime", "Netflix"])
    async with server.client() as client:
        sent = await client.post("/restate/send/SubscriptionService/add", json=request)
    assert sent.status_code == 202
    invocation_id = sent.json()["invocationId"]

    async with server.client(admin=True) as admin:

        async def retrying() -> bool:
            view = (await admin.get(f"/invocations/{invocation_id}")).json()
            return view["retry_count"] >= 3

        await wait_until(retrying)
        first = (await admin.get(f"/invocations/{invocation_id}")).json()
        await wait_until(lambda: _retry_count_above(admin, invocation_id, first["retry_count"]))
        view = (await admin.get(f"/invocations/{invocation_id}")).json()
    assert view["status"] in ("backing-off", "running")
    assert "Netflix" in view["last_failure"]["message"]
    assert view["last_failure"]["related_entry_name"] == "add-Netflix"

    # "Fix" Netflix and restart the service, as the seed does.
    server.terminate()
    server.env["TOUR_NETFLIX_DOWN"] = "0"
    await server.start()
    async with server.client() as client:
        attached = await client.get(f"/restate/attach/{invocation_id}")
    assert attached.status_code == 200, attached.text
    assert created_lines(server.output()) == [("Hulu", "user-123"), ("Prime", "user-123"), ("Netflix", "user-123")]
    assert server.output().count(">>> Creating recurring payment") == 1
    assert server.terminate() == 0


async def _retry_count_above(admin, invocation_id: str, count: int) -> bool:  # type: ignore[no-untyped-def]
    return (await admin.get(f"/invocations/{invocation_id}")).json()["retry_count"] > count


async def test_disney_saga_runs_compensations_in_reverse_order_once_and_returns_the_terminal_error(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    request = dict(SUBSCRIBE, subscriptions=["Hulu", "Prime", "Disney"])
    async with server.client() as client:
        response = await client.post("/restate/call/SubscriptionSaga/add", json=request)
    assert response.status_code == 400
    assert response.headers["x-restate-error-source"] == "invocation"
    body = response.json()
    assert body["code"] == 400 and "Disney" in body["message"] and body["source"] == "invocation"
    lines = [line for line in server.output().splitlines() if line.startswith(">>>")]
    payment = re.search(r">>> Creating recurring payment (\S+)", "\n".join(lines)).group(1)  # type: ignore[union-attr]
    assert lines == [
        f">>> Creating recurring payment {payment}",
        ">>> Created subscription Hulu for user user-123",
        ">>> Created subscription Prime for user user-123",
        ">>> Removed subscription Disney for user user-123",
        ">>> Removed subscription Prime for user user-123",
        ">>> Removed subscription Hulu for user user-123",
        f">>> Removing recurring payment {payment}",
    ]
    async with server.client(admin=True) as admin:
        view = (await admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    runs = [entry["name"] for entry in view["journal"] if entry["type"] == "run"]
    assert runs == ["pay", "add-Hulu", "add-Prime", "add-Disney", "undo-Disney", "undo-Prime", "undo-Hulu", "undo-pay"]
    assert view["completion_failure"]["code"] == 400
    assert server.terminate() == 0
