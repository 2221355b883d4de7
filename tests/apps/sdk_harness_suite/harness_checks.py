"""Tests as written for the official SDK's test harness (`restate.create_test_harness`, `restate.test_harness`).

Nothing here names durio: tests/test_sdk_harness.py runs this file with `restate` aliased to durio.
"""

import pytest
import restate

from greeter_app import app, count, greet, increment


@pytest.fixture
async def restate_env():
    async with restate.create_test_harness(app) as env:
        yield env


async def test_greet(restate_env: restate.HarnessEnvironment):
    assert await restate_env.client.service_call(greet, "Alice") == "Hello Alice"


async def test_a_terminal_error_reaches_the_client(restate_env):
    with pytest.raises(restate.HttpError) as error:
        await restate_env.client.service_call(greet, "")
    assert error.value.status_code == 400


async def test_counter_state(restate_env):
    client = restate_env.client
    await client.object_call(increment, "a", 2)
    await client.object_call(increment, "a", 3)
    assert await client.object_call(count, "a", None) == 5
    assert await client.object_call(count, "b", None) == 0


def test_the_sync_harness():
    with restate.test_harness(app) as harness:
        client = harness.ingress_client()
        response = client.post("/Greeter/greet", json="Bob")
        assert response.status_code == 200
        assert response.json() == "Hello Bob"


def test_the_sync_harness_without_with():
    harness = restate.test_harness(app, always_replay=True)
    harness.start()
    try:
        response = harness.ingress_client().post("/Counter/x/increment", json=4)
        assert response.json() == 4
    finally:
        harness.stop()
