"""sdk-test-suite NonDeterminismErrors (only always-suspending): a handler that takes another branch on
replay is caught before its next effect; with one attempt and on-max-attempts kill, it never increments
the counter. The server is configured as the suite configures Restate, by RESTATE_* variables."""

from __future__ import annotations

import typing
import uuid

import httpx
import pytest

from tests.conformance.client import call, call_ok, eventually

pytestmark = pytest.mark.only_always_suspending

STRICT = {
    "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "1",
    "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS": "kill",
    "RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL": "1ms",
}


@pytest.fixture
async def strict_ingress(targets, mode: str) -> typing.AsyncIterator[httpx.AsyncClient]:
    target = targets.get(mode, "non-determinism", STRICT)
    async with httpx.AsyncClient(base_url=target.ingress_url, timeout=httpx.Timeout(60.0)) as client:
        yield client


@pytest.mark.parametrize(
    "handler", ["eitherSleepOrCall", "callDifferentMethod", "backgroundInvokeWithDifferentTargets", "setDifferentKey"]
)
async def test_non_determinism_is_caught(strict_ingress, handler: str) -> None:
    key = f"{handler}-{uuid.uuid4()}"
    await call_ok(strict_ingress, "Counter", "add", 1, key=key)
    failed = await call(strict_ingress, "NonDeterministic", handler, key=key)
    assert failed.status_code >= 400, failed.text

    async def not_incremented() -> None:
        assert await call_ok(strict_ingress, "Counter", "get", key=key, idempotent=False) == 1

    await eventually(not_incremented)
