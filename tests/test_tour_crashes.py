"""kill -9 of a real server at a random moment during each tour example, then a restart.

Every accepted invocation completes, every call and send is delivered once,
and each side effect's log line appears once — or twice only when the first
copy was printed before the kill (the step ran but its result was not yet
durable: the at-least-once window of `run`).
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import time
import typing

import httpx
import pytest
import anyio

from durio.storage.lmdb_store import LmdbStore
from tests.conftest import TEST_APPS, TOUR_APP, ServerProcess, free_port, wait_until

SEED = int(os.environ.get("DURIO_TEST_SEED", time.time_ns() % 1_000_000))
CONFIRM_LINE = re.compile(r"curl localhost:8080/restate/call/Payments/confirm --json '(.*)'")


def accepted_invocations(server: ServerProcess) -> dict[str, dict]:
    store = LmdbStore(server.data_dir, readonly=True)
    try:
        return store.read(lambda txn: {r.id: {"target": str(r.target), "caller": r.caller_id} for r in txn.iter_invocations()})
    finally:
        store.close()


def effect_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(">>>")]


async def all_completed(admin: httpx.AsyncClient, ids: typing.Iterable[str]) -> bool:
    for invocation_id in ids:
        view = (await admin.get(f"/invocations/{invocation_id}")).json()
        if view["status"] != "completed":
            return False
    return True


def subscription(i: int, subscriptions: list[str]) -> dict:
    return {"userId": f"user-{i}", "creditCard": "4111111111111111", "subscriptions": subscriptions}


def payment(i: int) -> dict:
    return {"amount": 100 + i, "currency": "USD", "customerId": f"cust-{i}", "orderId": f"order-{i}"}


def concert(i: int) -> dict:
    return {
        "ticketId": f"ticket-{i}",
        "price": 100,
        "customerEmail": f"fan{i}@example.com",
        "concertDate": "2031-10-01T20:00:00Z",
    }


EXAMPLES: list[tuple[str, typing.Callable[[int], typing.Any]]] = [
    ("SubscriptionService/add", lambda i: subscription(i, ["Hulu", "Prime"])),
    ("SubscriptionSaga/add", lambda i: subscription(i, ["Hulu", "Prime", "Disney"])),
    ("ParallelSubscriptionService/add", lambda i: subscription(i, ["Hulu", "Prime", "YouTube"])),
    ("UserSubscriptions/user-{i}/add", lambda i: "Hulu"),
    ("ConcertTicketingService/buy", concert),
    ("Payments/process", payment),
    ("PaymentsWithTimeout/process", payment),
]


@pytest.mark.parametrize("path,body", EXAMPLES, ids=[path.split("/")[0] for path, _ in EXAMPLES])
async def test_kill_9_at_a_random_moment_during_a_tour_example(
    server_process, path: str, body: typing.Callable[[int], typing.Any]
) -> None:
    rng = random.Random(f"{SEED}-{path}")
    server = server_process(TOUR_APP)
    await server.start()
    count = 8
    first_accepted = anyio.Event()
    async with server.client() as client:
        async with anyio.create_task_group() as nursery:

            async def send(i: int) -> None:
                try:
                    response = await client.post(f"/restate/send/{path.format(i=i)}", json=body(i))
                except httpx.HTTPError:
                    return
                if response.status_code == 202:
                    first_accepted.set()

            for i in range(count):
                nursery.start_soon(send, i)
            # The random moment counts from the first acceptance, so there is always something to recover.
            with anyio.fail_after(30):
                await first_accepted.wait()
            await anyio.sleep(rng.uniform(0.0, 0.15))
            server.kill9()
    before_kill = server.output()
    accepted = accepted_invocations(server)
    roots = [i for i, v in accepted.items() if v["caller"] is None]
    assert roots, "the kill came before any invocation was accepted: this run would check nothing"

    await server.start()
    confirmed: set[str] = set()
    async with server.client() as client, server.client(admin=True) as admin:

        async def done() -> bool:
            # The payment examples wait for their webhook: confirm every payment as its curl line appears.
            for line in CONFIRM_LINE.findall(server.output()):
                awakeable = json.loads(line)["id"]
                if awakeable not in confirmed:
                    confirmation = await client.post(f"/restate/call/{path.split('/')[0]}/confirm", content=line)
                    assert confirmation.status_code == 200, confirmation.text
                    confirmed.add(awakeable)
            return await all_completed(admin, roots)

        await wait_until(done, timeout=60)
        views = {i: (await admin.get(f"/invocations/{i}")).json() for i in roots}

    # Every call and send of an accepted invocation was delivered exactly once.
    final = accepted_invocations(server)
    children = collections.Counter((v["caller"], v["target"]) for v in final.values() if v["caller"] is not None)
    for root in roots:
        if path.startswith("ConcertTicketingService"):
            for target in ("PaymentService/charge", "EmailService/emailTicket", "EmailService/sendReminder"):
                assert children[(root, target)] == 1, f"{target} delivered {children[(root, target)]} times for {root}"

    # Each side effect happened once, or twice only if the first copy came before the kill.
    after_restart = server.new_output()
    before = collections.Counter(effect_lines(before_kill))
    after = collections.Counter(effect_lines(after_restart))
    for line, n_after in after.items():
        assert n_after == 1, f"{line!r} printed {n_after} times after the restart (seed {SEED})"
        assert before[line] <= 1, f"{line!r} printed {before[line]} times before the kill (seed {SEED})"

    for root, view in views.items():
        if path.startswith("SubscriptionSaga"):
            assert view["completion_failure"]["code"] == 400
        else:
            assert view["completion_result"] == "success", view
    assert server.terminate() == 0


async def test_a_5s_sleep_interrupted_after_3s_completes_2s_after_the_restart(server_process) -> None:
    server = server_process(TEST_APPS / "sleeper_app.py")
    await server.start()
    async with server.client() as client:
        sent = await client.post("/restate/send/Sleeper/nap", json=5000)
    invocation_id = sent.json()["invocationId"]
    await anyio.sleep(3.0)
    server.kill9()
    restarted = time.monotonic()
    await server.start()
    async with server.client() as client:
        result = await client.get(f"/restate/attach/{invocation_id}")
    took = time.monotonic() - restarted
    assert result.json() == "slept 5000 ms"
    assert 1.0 <= took <= 3.5, f"the sleep finished {took:.2f}s after the restart, not about 2s"
    assert server.terminate() == 0


async def test_a_timer_that_fell_due_while_the_server_was_down_fires_at_once_after_the_restart(server_process) -> None:
    server = server_process(TEST_APPS / "sleeper_app.py")
    await server.start()
    async with server.client() as client:
        sent = await client.post("/restate/send/Sleeper/nap", json=1000)
    invocation_id = sent.json()["invocationId"]
    server.kill9()
    await anyio.sleep(2.0)  # down past the timer's due time
    await server.start()
    ready = time.monotonic()
    async with server.client() as client:
        result = await client.get(f"/restate/attach/{invocation_id}")
    took = time.monotonic() - ready
    assert result.json() == "slept 1000 ms"
    # Sleeping the timer's 1 s again, or its remainder as of the kill, would take about 1 s.
    assert took < 0.6, f"a late timer fired {took:.2f}s after the server was ready; it should fire at once"
    assert server.terminate() == 0


async def test_an_awakeable_resolved_while_the_server_is_down_is_delivered_once(server_process) -> None:
    server = server_process(TOUR_APP)
    server.ingress_bind = f"127.0.0.1:{free_port()}"
    await server.start()
    async with server.client() as client:
        sent = await client.post("/restate/send/Payments/process", json=payment(1))
    invocation_id = sent.json()["invocationId"]

    async def confirm_line_printed() -> bool:
        return bool(CONFIRM_LINE.search(server.output()))

    await wait_until(confirm_line_printed)
    awakeable = json.loads(CONFIRM_LINE.search(server.output()).group(1))["id"]  # type: ignore[union-attr]
    server.kill9()

    resolved: list[int] = []

    async def resolve_with_retries() -> None:
        async with httpx.AsyncClient(base_url=server.ingress_url, timeout=5) as client:
            while True:
                try:
                    response = await client.post(
                        f"/restate/awakeables/{awakeable}/resolve", json={"success": True, "transactionId": "txn-down"}
                    )
                except httpx.HTTPError:
                    await anyio.sleep(0.1)  # the server is down: a client with retries keeps trying
                    continue
                resolved.append(response.status_code)
                return

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(resolve_with_retries)
        await anyio.sleep(0.5)
        assert not resolved
        await server.start()
    assert resolved == [202]
    async with server.client() as client:
        result = await client.get(f"/restate/attach/{invocation_id}")
        assert result.json() == {"success": True, "transactionId": "txn-down", "errorMessage": None}
        again = await client.post(f"/restate/awakeables/{awakeable}/resolve", json={"success": False})
        assert again.status_code == 409
    assert server.terminate() == 0
