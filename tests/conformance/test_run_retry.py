"""sdk-test-suite RunRetry and RunFlush: run steps retried until they succeed or exhaust their attempts,
and (always suspending) a run waits for its acknowledgement, so a replay never runs a step again."""

from __future__ import annotations

import uuid

import pytest

from tests.conformance.client import call_ok


async def test_run_is_retried_until_it_succeeds(ingress) -> None:
    assert await call_ok(ingress, "Failing", "sideEffectSucceedsAfterGivenAttempts", 3, key=str(uuid.uuid4())) >= 3


async def test_run_is_executed_only_once(ingress) -> None:
    assert await call_ok(ingress, "Failing", "sideEffectFailsAfterGivenAttempts", 1, key=str(uuid.uuid4())) >= 1


async def test_run_is_retried_until_it_exhausts_the_retry_attempts(ingress) -> None:
    assert await call_ok(ingress, "Failing", "sideEffectFailsAfterGivenAttempts", 3, key=str(uuid.uuid4())) >= 3


@pytest.mark.only_always_suspending
@pytest.mark.not_applicable(
    ("embedded",),
    "an embedded step's result is journaled in-process, and the handler continues "
    "once the write is durable: there is no acknowledgement to wait for across a network, so "
    "nothing suspends and the local count is not restarted by a replay",
)
async def test_run_flush_waits_on_acknowledgements(ingress) -> None:
    # RunFlush (only always-suspending): each step suspends, the replay starts the local count again.
    assert await call_ok(ingress, "TestUtilsService", "countExecutedSideEffects", 3) == 0
