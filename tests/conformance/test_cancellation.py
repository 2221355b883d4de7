"""sdk-test-suite Cancellation and KillInvocation: cancelling (admin API or context) an invocation
blocked on a call, a sleep or an awakeable unwinds it and its call tree; killing a call tree frees the
objects it held."""

from __future__ import annotations

import uuid

import pytest

from tests.conformance.client import call_ok, eventually, proxy_request, send

OPERATIONS = ["CALL", "SLEEP", "AWAKEABLE"]


async def _wait_for_awakeable_then_unlock(ingress, key: str) -> None:
    async def held() -> None:
        assert await call_ok(ingress, "AwakeableHolder", "hasAwakeable", key=key, idempotent=False) is True

    await eventually(held)
    await call_ok(ingress, "AwakeableHolder", "unlock", "cancel", key=key)


async def _verify_cancelled(ingress, key: str, cancel) -> None:  # type: ignore[no-untyped-def]
    async def verified() -> None:
        await cancel()
        assert await call_ok(ingress, "CancelTestRunner", "verifyTest", key=key) is True

    await eventually(verified)

    async def unlocked() -> None:
        await call_ok(ingress, "CancelTestBlockingService", "isUnlocked", key=key, idempotent=False)

    await eventually(unlocked)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_cancel_from_admin_api(ingress, admin, operation: str) -> None:
    key = str(uuid.uuid4())
    invocation_id = (await send(ingress, "CancelTestRunner", "startTest", operation, key=key))["invocationId"]
    await _wait_for_awakeable_then_unlock(ingress, key)

    async def cancel() -> None:
        response = await admin.patch(f"/invocations/{invocation_id}/cancel")
        assert response.status_code in (200, 202, 404, 409), response.text

    await _verify_cancelled(ingress, key, cancel)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_cancel_from_context(ingress, operation: str) -> None:
    key = str(uuid.uuid4())
    invocation_id = await call_ok(
        ingress, "Proxy", "oneWayCall", proxy_request("CancelTestRunner", "startTest", operation, key=key)
    )
    await _wait_for_awakeable_then_unlock(ingress, key)

    async def cancel() -> None:
        await call_ok(ingress, "TestUtilsService", "cancelInvocation", invocation_id)

    await _verify_cancelled(ingress, key, cancel)


async def test_kill_invocation(ingress, admin) -> None:
    key = str(uuid.uuid4())
    invocation_id = (await send(ingress, "KillTestRunner", "startCallTree", key=key))["invocationId"]
    await _wait_for_awakeable_then_unlock(ingress, key)

    async def kill() -> None:
        response = await admin.patch(f"/invocations/{invocation_id}/kill")
        assert response.status_code in (200, 202), response.text

    await eventually(kill)

    async def unlocked() -> None:
        await call_ok(ingress, "KillTestSingleton", "isUnlocked", key=key, idempotent=False)

    await eventually(unlocked)
