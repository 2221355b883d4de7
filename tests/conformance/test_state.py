"""sdk-test-suite State: a counter object, state through a proxied one-way call, list and clear all."""

from __future__ import annotations

import uuid

from tests.conformance.client import call_ok, eventually, proxy_request


async def test_add(ingress) -> None:
    counter = str(uuid.uuid4())
    assert await call_ok(ingress, "Counter", "add", 1, key=counter) == {"oldValue": 0, "newValue": 1}
    assert await call_ok(ingress, "Counter", "add", 2, key=counter) == {"oldValue": 1, "newValue": 3}


async def test_proxy_one_way_add(ingress) -> None:
    counter = str(uuid.uuid4())
    for _ in range(3):
        await call_ok(ingress, "Proxy", "oneWayCall", proxy_request("Counter", "add", 1, key=counter))

    async def three() -> None:
        assert await call_ok(ingress, "Counter", "get", key=counter, idempotent=False) == 3

    await eventually(three)


async def test_list_state_and_clear_all(ingress) -> None:
    name = str(uuid.uuid4())
    another = name + "1"
    await call_ok(ingress, "MapObject", "set", {"key": "my-key-0", "value": "my-value-0"}, key=name)
    await call_ok(ingress, "MapObject", "set", {"key": "my-key-1", "value": "my-value-1"}, key=name)
    await call_ok(ingress, "MapObject", "set", {"key": "my-key-2", "value": "my-value-2"}, key=another)
    cleared = await call_ok(ingress, "MapObject", "clearAll", key=name)
    assert sorted(entry["key"] for entry in cleared) == ["my-key-0", "my-key-1"]
    assert await call_ok(ingress, "MapObject", "get", "my-key-0", key=name) == ""
    assert await call_ok(ingress, "MapObject", "get", "my-key-1", key=name) == ""
    assert await call_ok(ingress, "MapObject", "get", "my-key-2", key=another) == "my-value-2"
