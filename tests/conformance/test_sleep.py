"""sdk-test-suite Sleep: a durable sleep takes at least its duration; many concurrent sleeps all end."""

from __future__ import annotations

import random
import time

import anyio

from tests.conformance.client import call_ok


async def test_sleep(ingress) -> None:
    started = time.monotonic()
    await call_ok(ingress, "TestUtilsService", "sleepConcurrently", [10])
    assert time.monotonic() - started >= 0.010


async def test_many_sleeps(ingress) -> None:
    # The suite's numbers: 50 invocations at once, each with 20 timers of 10-50 ms.
    with anyio.fail_after(60):
        async with anyio.create_task_group() as nursery:
            for _ in range(50):
                nursery.start_soon(
                    call_ok, ingress, "TestUtilsService", "sleepConcurrently", [random.randint(10, 50) for _ in range(20)]
                )
