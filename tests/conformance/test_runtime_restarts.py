"""sdk-test-suite KillRuntime and StopRuntime: state survives a kill -9 and a SIGTERM of the real server
process, started again on the same data dir and ports."""

from __future__ import annotations

import uuid

import httpx
import anyio
import anyio.to_thread

from tests.conformance.client import call_ok, eventually


async def _add_restart_add(target, restart) -> None:  # type: ignore[no-untyped-def]
    key = f"my-key-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=target.ingress_url, timeout=30) as client:
        assert await call_ok(client, "Counter", "add", 1, key=key) == {"oldValue": 0, "newValue": 1}
    await anyio.to_thread.run_sync(restart)
    idempotency_key = str(uuid.uuid4())

    async def second_add() -> None:
        async with httpx.AsyncClient(base_url=target.ingress_url, timeout=5) as client:
            assert await call_ok(client, "Counter", "add", 2, key=key, idempotency_key=idempotency_key) == {
                "oldValue": 1,
                "newValue": 3,
            }

    await eventually(second_add, timeout=60)


async def test_start_and_kill_runtime_retains_the_state(target) -> None:
    await _add_restart_add(target, target.kill_and_restart)


async def test_start_and_stop_runtime_retains_the_state(target) -> None:
    await _add_restart_add(target, target.terminate_and_restart)
