"""sdk-test-suite Combinators: an awakeable raced against a timer (await any, and await-or-timeout),
and the first successful of several awakeables and failing run steps."""

from __future__ import annotations

import uuid

import anyio

from tests.conformance.client import call, call_ok, eventually

INTERPRETER = "VirtualObjectCommandInterpreter"


async def test_awakeable_or_timeout_using_await_any(ingress) -> None:
    request = {
        "commands": [
            {
                "type": "awaitAny",
                "commands": [{"type": "createAwakeable", "awakeableKey": "awk1"}, {"type": "sleep", "timeoutMillis": 100}],
            }
        ]
    }
    assert await call_ok(ingress, INTERPRETER, "interpretCommands", request, key=str(uuid.uuid4())) == "sleep"


async def test_awakeable_or_timeout_using_awakeable_timeout_command(ingress) -> None:
    request = {"commands": [{"type": "awaitAwakeableOrTimeout", "awakeableKey": "should-timeout-awk", "timeoutMillis": 100}]}
    response = await call(ingress, INTERPRETER, "interpretCommands", request, key=str(uuid.uuid4()))
    assert response.status_code >= 400 and "await-timeout" in response.json()["message"], response.text


async def test_first_successful_completed_awakeable(ingress) -> None:
    key = str(uuid.uuid4())
    commands = []
    for index in range(3):
        commands += [
            {"type": "createAwakeable", "awakeableKey": f"awk{index}"},
            {"type": "runThrowTerminalException", "reason": f"run{index}"},
        ]
    request = {"commands": [{"type": "awaitAnySuccessful", "commands": commands}]}
    result: list[str] = []

    async def interpret() -> None:
        result.append(await call_ok(ingress, INTERPRETER, "interpretCommands", request, key=key))

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(interpret)

        async def created() -> None:
            assert await call_ok(ingress, INTERPRETER, "hasAwakeable", "awk2", key=key, idempotent=False) is True

        await eventually(created)
        assert await call_ok(ingress, INTERPRETER, "hasAwakeable", "awk0", key=key) is True
        assert await call_ok(ingress, INTERPRETER, "hasAwakeable", "awk1", key=key) is True
        await call_ok(ingress, INTERPRETER, "rejectAwakeable", {"awakeableKey": "awk2", "reason": "fail"}, key=key)
        await call_ok(ingress, INTERPRETER, "resolveAwakeable", {"awakeableKey": "awk1", "value": "awk1-result"}, key=key)
    assert result == ["awk1-result"]
