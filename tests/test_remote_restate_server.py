"""The tour's service file, unchanged, three ways: embedded in durio, as a deployment of a durio server,
and as a deployment of the official Restate server (npm @restatedev/restate-server) — same results."""

from __future__ import annotations

import json
import pathlib
import re
import sys
import typing

import httpx


from tests.conftest import TOUR_APP, free_port, wait_until
from tests.remote_peers import Peer, RestateServer

CONFIRM = re.compile(r"curl localhost:8080/restate/call/Payments/confirm --json '(.*)'")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalized(response: httpx.Response) -> tuple[int, typing.Any]:
    text = UUID.sub("<uuid>", response.text)
    try:
        return response.status_code, json.loads(text) if text else None
    except ValueError:
        return response.status_code, text


async def run_the_tour(ingress: str, log: typing.Callable[[], str]) -> list[tuple[int, typing.Any]]:
    """The seed's curl lines, in order; what each answered (uuids masked)."""
    user = {"userId": "user-123", "creditCard": "4111111111111111"}
    results = []
    async with httpx.AsyncClient(base_url=ingress, timeout=60) as client:

        async def call(path: str, body: typing.Any = None, **kwargs: typing.Any) -> httpx.Response:
            response = await client.post(path, json=body, **kwargs) if body is not None else await client.get(path, **kwargs)
            results.append(normalized(response))
            return response

        await call("/restate/call/SubscriptionService/add", dict(user, subscriptions=["Hulu", "Prime"]))
        await call("/restate/call/SubscriptionSaga/add", dict(user, subscriptions=["Hulu", "Prime", "Disney"]))
        for key, item in (("user-123", "Hulu"), ("user-123", "Prime"), ("user-123", "Disney"), ("user-456", "Netflix")):
            await call(f"/restate/call/UserSubscriptions/{key}/add", item)
        await call("/restate/call/UserSubscriptions/user-123/getSubscriptions")
        await call("/restate/call/UserSubscriptions/user-456/getSubscriptions")
        ticket = {
            "ticketId": "ticket-789",
            "price": 100,
            "customerEmail": "[email protected]",
            "concertDate": "2026-10-01T20:00:00Z",
        }
        await call("/restate/call/ConcertTicketingService/buy", ticket)
        first = await call(
            "/restate/call/ConcertTicketingService/buy",
            dict(ticket, concertDate="2023-10-01T20:00:00Z"),
            headers={"Idempotency-Key": "unique-key-123"},
        )
        second = await client.post(
            "/restate/call/ConcertTicketingService/buy",
            json=dict(ticket, concertDate="2023-10-01T20:00:00Z"),
            headers={"Idempotency-Key": "unique-key-123"},
        )
        results.append((second.status_code, second.text == first.text))
        await call("/restate/call/ParallelSubscriptionService/add", dict(user, subscriptions=["Hulu", "Prime", "YouTube"]))

        payment = {"amount": 100, "currency": "USD", "customerId": "cust-123", "orderId": "order-456"}
        sent = await client.post("/restate/send/Payments/process", json=payment)
        results.append((sent.status_code, sent.json()["status"]))

        async def confirm_printed() -> bool:
            return bool(CONFIRM.search(log()))

        await wait_until(confirm_printed, timeout=30)
        await call("/restate/call/Payments/confirm", json.loads(CONFIRM.search(log()).group(1)))  # type: ignore[union-attr]
        await call(f"/restate/attach/{sent.json()['invocationId']}")

        # The workflow: a sign-up that waits for its email link, a durable promise resolved by a shared handler.
        signup = await client.post("/restate/send/SignupWorkflow/ada@example.com/run", json={"name": "Ada"})
        results.append((signup.status_code, signup.json()["status"]))

        async def link_printed() -> bool:
            return "SignupWorkflow/ada@example.com/confirm" in log()

        await wait_until(link_printed, timeout=30)
        secret = re.search(r"ada@example.com/confirm --json '\"(.+)\"'", log()).group(1)  # type: ignore[union-attr]
        await call("/restate/call/SignupWorkflow/ada@example.com/status")
        await call("/restate/call/SignupWorkflow/ada@example.com/confirm", secret)
        await call("/restate/workflow/SignupWorkflow/ada@example.com/attach")
        await call("/restate/call/SignupWorkflow/ada@example.com/status")
    return results


EXPECTED = [
    (200, None),
    (400, {"code": 400, "message": "[simulated] Disney subscription is not available in this region"}),
    (200, None),
    (200, None),
    (200, None),
    (200, None),
    (200, ["Hulu", "Prime", "Disney"]),
    (200, ["Netflix"]),
    (200, "Ticket purchased successfully with payment reference: <uuid>"),
    (200, "Ticket purchased successfully with payment reference: <uuid>"),
    (200, True),
    (200, {"success": True, "paymentRef": "payRef-<uuid>"}),
    (202, "Accepted"),
    (200, None),
    (200, {"success": True, "transactionId": "txn-123", "errorMessage": None}),
    (202, "Accepted"),
    (200, "waiting for email confirmation"),
    (200, None),
    (200, {"userId": "user-ada@example.com", "status": "active"}),
    (200, "active"),
]


def comparable(results: list[tuple[int, typing.Any]]) -> list[tuple[int, typing.Any]]:
    """Error bodies differ only in fields one server adds (source, stacktrace): compare code and message."""
    out = []
    for status, body in results:
        if isinstance(body, dict) and "code" in body and "message" in body:
            body = {"code": body["code"], "message": body["message"]}
        out.append((status, body))
    return out


def tour_endpoint(tmp_path: pathlib.Path) -> Peer:
    port = free_port()
    return Peer([sys.executable, str(TOUR_APP)], tmp_path / "endpoint.log", port, {"TOUR_BIND": f"127.0.0.1:{port}"})


async def test_the_tour_embedded_in_durio(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    assert comparable(await run_the_tour(server.ingress_url, server.output)) == EXPECTED
    assert server.terminate() == 0


async def test_the_tour_as_a_deployment_of_a_durio_server(server_process, tmp_path) -> None:
    endpoint = tour_endpoint(tmp_path)
    await endpoint.start()
    try:
        server = server_process(None)
        await server.start()
        async with server.client(admin=True) as admin:
            assert (await admin.post("/deployments", json={"uri": endpoint.url})).status_code == 201
        assert comparable(await run_the_tour(server.ingress_url, endpoint.output)) == EXPECTED
        lines = [
            line for line in endpoint.output().splitlines() if line.startswith(">>> Removed") or line.startswith(">>> Removing")
        ]
        assert [line.split(" for ")[0] for line in lines] == [
            ">>> Removed subscription Disney",
            ">>> Removed subscription Prime",
            ">>> Removed subscription Hulu",
            lines[-1].split(" for ")[0],
        ]
        assert server.terminate() == 0
    finally:
        endpoint.stop()


async def test_the_tour_on_the_official_restate_server(tmp_path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    endpoint = tour_endpoint(tmp_path)
    try:
        await restate.start(ready_path="/health")
        await endpoint.start()
        registered = await restate.register(endpoint.url)
        assert {s["name"] for s in registered["services"]} >= {"SubscriptionService", "UserSubscriptions", "SignupWorkflow"}
        assert comparable(await run_the_tour(restate.ingress_url, endpoint.output)) == EXPECTED
        # The saga's compensations ran in reverse order, each once.
        removed = [line for line in endpoint.output().splitlines() if line.startswith(">>> Removed subscription")]
        assert removed == [f">>> Removed subscription {s} for user user-123" for s in ("Disney", "Prime", "Hulu")]
    finally:
        endpoint.stop()
        restate.stop()
