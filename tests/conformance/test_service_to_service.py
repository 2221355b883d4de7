"""sdk-test-suite ServiceToServiceCommunication and CallOrdering: calls and one-way calls between
services, with idempotency keys and delays, and the order in which one caller's calls reach an object."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conformance.client import call, call_ok, eventually, proxy_request


async def test_regular_call(ingress) -> None:
    answer = await call_ok(ingress, "Proxy", "call", proxy_request("TestUtilsService", "uppercaseEcho", "ping"))
    assert bytes(answer) == json.dumps("PING").encode()


async def _counter_is(ingress, counter: str, value: int) -> None:
    async def check() -> None:
        assert await call_ok(ingress, "Counter", "get", key=counter, idempotent=False) == value

    await eventually(check)


async def test_one_way_call(ingress) -> None:
    counter = str(uuid.uuid4())
    await call_ok(ingress, "Proxy", "oneWayCall", proxy_request("Counter", "add", 1, key=counter))
    await _counter_is(ingress, counter, 1)


async def test_one_way_call_with_idempotency_key(ingress) -> None:
    counter, idempotency_key = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(2):  # the same key twice: one add
        await call_ok(
            ingress,
            "Proxy",
            "oneWayCall",
            proxy_request("Counter", "add", 1, key=counter, idempotencyKey=idempotency_key),
            idempotent=False,
        )
    await _counter_is(ingress, counter, 1)
    output = await ingress.get(f"/restate/invocation/Counter/{counter}/add/{idempotency_key}/output")
    assert output.status_code == 200, output.text
    assert output.json() == {"oldValue": 0, "newValue": 1}


async def test_call_with_idempotency_key(ingress) -> None:
    counter, idempotency_key = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(2):
        raw = await call_ok(
            ingress,
            "Proxy",
            "call",
            proxy_request("Counter", "add", 1, key=counter, idempotencyKey=idempotency_key),
            idempotent=False,
        )
        assert json.loads(bytes(raw)) == {"oldValue": 0, "newValue": 1}
    await _counter_is(ingress, counter, 1)
    output = await ingress.get(f"/restate/invocation/Counter/{counter}/add/{idempotency_key}/output")
    assert output.status_code == 200 and output.json() == {"oldValue": 0, "newValue": 1}


async def test_one_way_call_with_delay(ingress) -> None:
    counter = str(uuid.uuid4())
    started = time.monotonic()
    for _ in range(10):
        await call_ok(ingress, "Proxy", "oneWayCall", proxy_request("Counter", "add", 1, key=counter, delayMillis=5000))
    await _counter_is(ingress, counter, 10)
    # The delay is waited before the calls queue on the key: ten delayed calls take 5 s, not 50.
    assert 5.0 <= time.monotonic() - started < 30.0


@pytest.mark.parametrize("ordering", [(True, False, False), (False, True, False), (True, True, False)])
async def test_call_ordering(ingress, ordering: tuple[bool, ...]) -> None:
    name = str(uuid.uuid4())
    requests = [
        {
            "proxyRequest": proxy_request("ListObject", "append", str(index), key=name),
            "oneWayCall": one_way,
            "awaitAtTheEnd": not one_way,
        }
        for index, one_way in enumerate(ordering)
    ]
    await call_ok(ingress, "Proxy", "manyCalls", requests)
    assert await call_ok(ingress, "ListObject", "clear", key=name) == ["0", "1", "2"]


async def test_a_call_to_an_unknown_handler_is_404(ingress) -> None:
    # Not in the suite: the ingress's own answer, which the suite's clients rely on.
    assert (await call(ingress, "Counter", "nope", key="k")).status_code == 404
