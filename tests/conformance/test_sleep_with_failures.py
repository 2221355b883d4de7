"""sdk-test-suite SleepWithFailures: a sleeping invocation survives its service endpoint being killed
(kill -9) or stopped (SIGTERM) and started again mid-sleep; the call still answers, after the sleep."""

from __future__ import annotations

import random
import time

import pytest
import anyio
import anyio.to_thread

from tests.conformance.client import call_ok

SLEEP_S = 4.0

pytestmark = pytest.mark.not_applicable(
    ("embedded",),
    "embedded, the service endpoint is the server itself: killing it also drops the caller's "
    "connection, so the call cannot answer (restarting the server mid-sleep is KillRuntime/StopRuntime)",
)


async def _sleep_through(ingress, restart) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(call_ok, ingress, "TestUtilsService", "sleepConcurrently", [int(SLEEP_S * 1000)])
        await anyio.sleep(random.uniform(SLEEP_S / 4, SLEEP_S / 2))
        await anyio.to_thread.run_sync(restart)
    assert time.monotonic() - started >= SLEEP_S


async def test_sleep_and_kill_service_endpoint(ingress, targets) -> None:
    deployment = targets.deployment()

    def kill_and_restart() -> None:
        deployment.kill9()
        deployment.start()

    await _sleep_through(ingress, kill_and_restart)


async def test_sleep_and_terminate_service_endpoint(ingress, targets) -> None:
    deployment = targets.deployment()

    def terminate_and_restart() -> None:
        deployment.terminate()
        deployment.start()

    await _sleep_through(ingress, terminate_and_restart)
