"""sdk-test-suite UserErrors: terminal errors (with metadata) reach the caller, through calls and side
effects; state set before a failure stays; retryable errors are retried until the handler succeeds."""

from __future__ import annotations

import uuid

from tests.conformance.client import call, call_ok

METADATA = {"key1": "value1", "key2": "value2"}


async def _failure(ingress, handler: str, message: str, metadata: dict[str, str] | None = None) -> dict:
    body = {"errorMessage": message, **({"metadata": metadata} if metadata else {})}
    response = await call(ingress, "Failing", handler, body, key=str(uuid.uuid4()))
    assert response.status_code >= 400, response.text
    return response.json()


async def test_invoke_terminally_failing_call(ingress) -> None:
    assert "my error" in (await _failure(ingress, "terminallyFailingCall", "my error"))["message"]


async def test_fail_several_times(ingress) -> None:
    for _ in range(3):
        assert "my error" in (await _failure(ingress, "terminallyFailingCall", "my error"))["message"]


async def test_internal_call_failure_propagation(ingress) -> None:
    assert "propagated error" in (await _failure(ingress, "callTerminallyFailingCall", "propagated error"))["message"]


async def test_side_effect_with_terminal_error(ingress) -> None:
    assert "failed side effect" in (await _failure(ingress, "terminallyFailingSideEffect", "failed side effect"))["message"]


async def test_invoke_terminally_failing_call_with_metadata(ingress) -> None:
    error = await _failure(ingress, "terminallyFailingCall", "my error with metadata", METADATA)
    assert "my error with metadata" in error["message"]
    assert METADATA.items() <= (error.get("metadata") or {}).items()


async def test_fail_several_times_with_metadata(ingress) -> None:
    for _ in range(3):
        error = await _failure(ingress, "terminallyFailingCall", "my error with metadata", METADATA)
        assert METADATA.items() <= (error.get("metadata") or {}).items()


async def test_internal_call_failure_propagation_with_metadata(ingress) -> None:
    error = await _failure(ingress, "callTerminallyFailingCall", "propagated error with metadata", METADATA)
    assert "propagated error with metadata" in error["message"]
    assert METADATA.items() <= (error.get("metadata") or {}).items()


async def test_side_effect_with_terminal_error_with_metadata(ingress) -> None:
    error = await _failure(ingress, "terminallyFailingSideEffect", "failed side effect with metadata", METADATA)
    assert "failed side effect with metadata" in error["message"]
    assert METADATA.items() <= (error.get("metadata") or {}).items()


async def test_set_state_then_fail_should_persist_state(ingress) -> None:
    name = f"my-failure-counter-{uuid.uuid4()}"  # the suite's fixed name, made unique per server session
    failed = await call(ingress, "Counter", "addThenFail", 1, key=name)
    assert failed.status_code >= 400 and name in failed.json()["message"]
    assert await call_ok(ingress, "Counter", "get", key=name) == 1


async def test_invocation_with_eventual_success(ingress) -> None:
    assert await call_ok(ingress, "Failing", "failingCallWithEventualSuccess", key=str(uuid.uuid4())) == 4
