"""The services of Restate's SDK test suite (restatedev/sdk-test-suite, its `contracts/`), written for
the official Python SDK's names: `import restate` is the official restate-sdk in remote mode and durio
(durio.install_as_restate()) in embedded mode. Names, inputs and outputs follow the contracts; the
bodies are our own.

Process-local counters (attempts, executed side effects, the non-deterministic toggles) live in plain
dicts: the contracts ask for "an atomic counter in the service", not for state.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import os
import typing
from datetime import timedelta

import restate
from restate.serde import BytesSerde

# ---------------------------------------------------------------- Counter


counter = restate.VirtualObject("Counter")
COUNTER_KEY = "counter"


@counter.handler()
async def add(ctx: restate.ObjectContext, value: int) -> dict[str, int]:
    old = await ctx.get(COUNTER_KEY) or 0
    new = old + value
    ctx.set(COUNTER_KEY, new)
    return {"oldValue": old, "newValue": new}


@counter.handler(name="addThenFail")
async def add_then_fail(ctx: restate.ObjectContext, value: int) -> None:
    old = await ctx.get(COUNTER_KEY) or 0
    ctx.set(COUNTER_KEY, old + value)
    raise restate.TerminalError(ctx.key())


@counter.handler(kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get(COUNTER_KEY) or 0


@counter.handler()
async def reset(ctx: restate.ObjectContext) -> None:
    ctx.clear(COUNTER_KEY)


# ---------------------------------------------------------------- Proxy


proxy = restate.Service("Proxy")


def _proxied(ctx: restate.Context, request: dict[str, typing.Any], send: bool) -> typing.Any:
    message = bytes(request["message"])
    if send:
        delay = request.get("delayMillis")
        return ctx.generic_send(
            request["serviceName"],
            request["handlerName"],
            message,
            key=request.get("virtualObjectKey"),
            send_delay=timedelta(milliseconds=delay) if delay else None,
            idempotency_key=request.get("idempotencyKey"),
        )
    return ctx.generic_call(
        request["serviceName"],
        request["handlerName"],
        message,
        key=request.get("virtualObjectKey"),
        idempotency_key=request.get("idempotencyKey"),
    )


@proxy.handler()
async def call(ctx: restate.Context, request: dict[str, typing.Any]) -> list[int]:
    return list(await _proxied(ctx, request, send=False))


@proxy.handler(name="oneWayCall")
async def one_way_call(ctx: restate.Context, request: dict[str, typing.Any]) -> str:
    return await _proxied(ctx, request, send=True).invocation_id()


@proxy.handler(name="manyCalls")
async def many_calls(ctx: restate.Context, requests: list[dict[str, typing.Any]]) -> None:
    to_await = []
    for request in requests:
        if request["oneWayCall"]:
            _proxied(ctx, request["proxyRequest"], send=True)
        elif request["awaitAtTheEnd"]:
            to_await.append(_proxied(ctx, request["proxyRequest"], send=False))
        else:
            await _proxied(ctx, request["proxyRequest"], send=False)
    for future in to_await:
        await future


# ---------------------------------------------------------------- ListObject, MapObject


list_object = restate.VirtualObject("ListObject")
LIST_KEY = "list"


@list_object.handler(name="append")
async def list_append(ctx: restate.ObjectContext, value: str) -> None:
    ctx.set(LIST_KEY, [*(await ctx.get(LIST_KEY) or []), value])


@list_object.handler(name="get")
async def list_get(ctx: restate.ObjectContext) -> list[str]:
    return await ctx.get(LIST_KEY) or []


@list_object.handler(name="clear")
async def list_clear(ctx: restate.ObjectContext) -> list[str]:
    items = await ctx.get(LIST_KEY) or []
    ctx.clear(LIST_KEY)
    return items


map_object = restate.VirtualObject("MapObject")


@map_object.handler(name="set")
async def map_set(ctx: restate.ObjectContext, entry: dict[str, str]) -> None:
    ctx.set(entry["key"], entry["value"])


@map_object.handler(name="get")
async def map_get(ctx: restate.ObjectContext, key: str) -> str:
    return await ctx.get(key) or ""


@map_object.handler(name="clearAll")
async def map_clear_all(ctx: restate.ObjectContext) -> list[dict[str, str]]:
    entries = [{"key": key, "value": await ctx.get(key)} for key in await ctx.state_keys()]
    ctx.clear_all()
    return entries


# ---------------------------------------------------------------- Failing


failing = restate.VirtualObject("Failing")
attempts: collections.Counter[str] = collections.Counter()


def _failure(failure: dict[str, typing.Any]) -> restate.TerminalError:
    return restate.TerminalError(failure["errorMessage"], metadata=failure.get("metadata") or None)


@failing.handler(name="terminallyFailingCall")
async def terminally_failing_call(ctx: restate.ObjectContext, failure: dict[str, typing.Any]) -> None:
    raise _failure(failure)


@failing.handler(name="callTerminallyFailingCall")
async def call_terminally_failing_call(ctx: restate.ObjectContext, failure: dict[str, typing.Any]) -> str:
    key = str(ctx.uuid())
    await ctx.generic_call("Failing", "terminallyFailingCall", json.dumps(failure).encode(), key=key)
    raise AssertionError("the call should have failed")


@failing.handler(name="failingCallWithEventualSuccess")
async def failing_call_with_eventual_success(ctx: restate.ObjectContext) -> int:
    attempt = attempts[f"eventual/{ctx.key()}"] = attempts[f"eventual/{ctx.key()}"] + 1
    if attempt >= 4:
        return attempt
    raise ValueError(f"failed at attempt {attempt}")


@failing.handler(name="terminallyFailingSideEffect")
async def terminally_failing_side_effect(ctx: restate.ObjectContext, failure: dict[str, typing.Any]) -> None:
    def fail() -> None:
        raise _failure(failure)

    await ctx.run_typed("fail", fail)
    raise AssertionError("the side effect should have failed")


@failing.handler(name="sideEffectSucceedsAfterGivenAttempts")
async def side_effect_succeeds_after_given_attempts(ctx: restate.ObjectContext, minimum_attempts: int) -> int:
    name = f"succeeds/{ctx.key()}"

    def attempt() -> int:
        attempts[name] += 1
        if attempts[name] < minimum_attempts:
            raise ValueError(f"failed at attempt {attempts[name]}")
        return attempts[name]

    return await ctx.run_typed("attempt", attempt, restate.RunOptions(initial_retry_interval=timedelta(milliseconds=10)))


@failing.handler(name="sideEffectFailsAfterGivenAttempts")
async def side_effect_fails_after_given_attempts(ctx: restate.ObjectContext, retry_count: int) -> int:
    name = f"fails/{ctx.key()}"

    def attempt() -> None:
        attempts[name] += 1
        raise ValueError(f"failed at attempt {attempts[name]}")

    try:
        await ctx.run_typed(
            "attempt",
            attempt,
            restate.RunOptions(max_attempts=retry_count + 1, initial_retry_interval=timedelta(milliseconds=10)),
        )
    except restate.TerminalError:
        return attempts[name]
    raise AssertionError("the side effect should have failed")


# ---------------------------------------------------------------- TestUtilsService


utils = restate.Service("TestUtilsService")
executed_side_effects: collections.Counter[str] = collections.Counter()


@utils.handler()
async def echo(ctx: restate.Context, value: str) -> str:
    return value


@utils.handler(name="uppercaseEcho")
async def uppercase_echo(ctx: restate.Context, value: str) -> str:
    return value.upper()


@utils.handler(name="echoHeaders")
async def echo_headers(ctx: restate.Context) -> dict[str, str]:
    return dict(ctx.request().headers)


@utils.handler(
    name="rawEcho", accept="*/*", content_type="application/octet-stream", input_serde=BytesSerde(), output_serde=BytesSerde()
)
async def raw_echo(ctx: restate.Context, value: bytes) -> bytes:
    return value


@utils.handler(name="sleepConcurrently")
async def sleep_concurrently(ctx: restate.Context, millis: list[int]) -> None:
    await restate.gather(*[ctx.sleep(timedelta(milliseconds=ms)) for ms in millis])


@utils.handler(name="countExecutedSideEffects")
async def count_executed_side_effects(ctx: restate.Context, increments: int) -> int:
    # A local count, not state: with an inactivity timeout of 0s every step suspends and the handler is
    # replayed from the top, so the count starts again at 0 and the journaled steps do not run again.
    count = 0

    def increment() -> None:
        nonlocal count
        count += 1

    for _ in range(increments):
        await ctx.run_typed("count", increment)
    return count


@utils.handler(name="cancelInvocation")
async def cancel_invocation(ctx: restate.Context, invocation_id: str) -> None:
    result = ctx.cancel_invocation(invocation_id)
    if inspect.isawaitable(result):
        await result


# ---------------------------------------------------------------- AwakeableHolder


awakeable_holder = restate.VirtualObject("AwakeableHolder")
AWAKEABLE_ID = "id"


@awakeable_holder.handler()
async def hold(ctx: restate.ObjectContext, awakeable_id: str) -> None:
    ctx.set(AWAKEABLE_ID, awakeable_id)


@awakeable_holder.handler(name="hasAwakeable")
async def has_awakeable(ctx: restate.ObjectContext) -> bool:
    return await ctx.get(AWAKEABLE_ID) is not None


@awakeable_holder.handler()
async def unlock(ctx: restate.ObjectContext, payload: str) -> None:
    awakeable_id = await ctx.get(AWAKEABLE_ID)
    if awakeable_id is None:
        raise restate.TerminalError("no awakeable is held")
    ctx.resolve_awakeable(awakeable_id, payload)
    ctx.clear(AWAKEABLE_ID)


async def _hold_and_wait(ctx: restate.ObjectContext) -> None:
    """Hand an awakeable to AwakeableHolder under our key and wait until the test unlocks it."""
    awakeable_id, unlocked = ctx.awakeable()
    ctx.generic_send("AwakeableHolder", "hold", json.dumps(awakeable_id).encode(), key=ctx.key())
    await unlocked


# ---------------------------------------------------------------- CancelTest


cancel_runner = restate.VirtualObject("CancelTestRunner")
CANCELED = "canceled"


@cancel_runner.handler(name="startTest")
async def start_test(ctx: restate.ObjectContext, operation: str) -> None:
    try:
        await ctx.generic_call("CancelTestBlockingService", "block", json.dumps(operation).encode(), key=ctx.key())
    except restate.TerminalError as exc:
        if exc.status_code != 409:
            raise
        ctx.set(CANCELED, True)


@cancel_runner.handler(name="verifyTest")
async def verify_test(ctx: restate.ObjectContext) -> bool:
    return bool(await ctx.get(CANCELED))


cancel_blocking = restate.VirtualObject("CancelTestBlockingService")


@cancel_blocking.handler()
async def block(ctx: restate.ObjectContext, operation: str) -> None:
    await _hold_and_wait(ctx)
    if operation == "CALL":
        # Ourselves, under our own key: queued behind this very invocation, so it never starts.
        await ctx.generic_call("CancelTestBlockingService", "block", json.dumps(operation).encode(), key=ctx.key())
    elif operation == "SLEEP":
        await ctx.sleep(timedelta(days=1))
    elif operation == "AWAKEABLE":
        _never_id, never = ctx.awakeable()
        await never


@cancel_blocking.handler(name="isUnlocked")
async def is_unlocked(ctx: restate.ObjectContext) -> None:
    return None


# ---------------------------------------------------------------- KillTest


kill_runner = restate.VirtualObject("KillTestRunner")


@kill_runner.handler(name="startCallTree")
async def start_call_tree(ctx: restate.ObjectContext) -> None:
    await ctx.generic_call("KillTestSingleton", "recursiveCall", b"", key=ctx.key())


kill_singleton = restate.VirtualObject("KillTestSingleton")


@kill_singleton.handler(name="recursiveCall")
async def recursive_call(ctx: restate.ObjectContext) -> None:
    await _hold_and_wait(ctx)
    await ctx.generic_call("KillTestSingleton", "recursiveCall", b"", key=ctx.key())


@kill_singleton.handler(name="isUnlocked")
async def kill_is_unlocked(ctx: restate.ObjectContext) -> None:
    return None


# ---------------------------------------------------------------- BlockAndWaitWorkflow


block_and_wait = restate.Workflow("BlockAndWaitWorkflow")
PROMISE = "durable-promise"


@block_and_wait.main()
async def run(ctx: restate.WorkflowContext, value: str) -> str:
    ctx.set("my-state", value)
    output = await ctx.promise(PROMISE, type_hint=str).value()
    if await ctx.promise(PROMISE, type_hint=str).peek() is None:
        raise restate.TerminalError("durable promise should be completed")
    return output


@block_and_wait.handler()
async def unblock(ctx: restate.WorkflowSharedContext, output: str) -> None:
    await ctx.promise(PROMISE, type_hint=str).resolve(output)


@block_and_wait.handler(name="getState")
async def get_state(ctx: restate.WorkflowSharedContext) -> str | None:
    return await ctx.get("my-state")


# ---------------------------------------------------------------- NonDeterministic


non_deterministic = restate.VirtualObject("NonDeterministic")
invocation_counts: collections.Counter[str] = collections.Counter()


def _left(ctx: restate.ObjectContext) -> bool:
    """Alternates for each execution of the same key: a replay takes the other branch than the first run."""
    invocation_counts[ctx.key()] += 1
    return invocation_counts[ctx.key()] % 2 == 1


async def _then_increment(ctx: restate.ObjectContext) -> None:
    # The sleep suspends the invocation (inactivity timeout 0s), so that it is replayed: the replay takes
    # the other branch, which must be caught as non-deterministic before this increment is ever sent.
    await ctx.sleep(timedelta(milliseconds=100))
    ctx.generic_send("Counter", "add", b"1", key=ctx.key())


@non_deterministic.handler(name="eitherSleepOrCall")
async def either_sleep_or_call(ctx: restate.ObjectContext) -> None:
    if _left(ctx):
        await ctx.sleep(timedelta(milliseconds=100))
    else:
        await ctx.generic_call("Counter", "get", b"", key="abc")
    await _then_increment(ctx)


@non_deterministic.handler(name="callDifferentMethod")
async def call_different_method(ctx: restate.ObjectContext) -> None:
    await ctx.generic_call("Counter", "get" if _left(ctx) else "reset", b"", key="abc")
    await _then_increment(ctx)


@non_deterministic.handler(name="backgroundInvokeWithDifferentTargets")
async def background_invoke_with_different_targets(ctx: restate.ObjectContext) -> None:
    ctx.generic_send("Counter", "get" if _left(ctx) else "reset", b"", key="abc")
    await _then_increment(ctx)


@non_deterministic.handler(name="setDifferentKey")
async def set_different_key(ctx: restate.ObjectContext) -> None:
    ctx.set("a" if _left(ctx) else "b", "my-state")
    await _then_increment(ctx)


# ---------------------------------------------------------------- VirtualObjectCommandInterpreter


interpreter = restate.VirtualObject("VirtualObjectCommandInterpreter")
RESULTS = "results"


def _awakeable_state(awakeable_key: str) -> str:
    return f"awk-{awakeable_key}"


def _awaitable(ctx: restate.ObjectContext, command: dict[str, typing.Any]) -> tuple[str, typing.Any]:
    """(kind, future) for an AwaitableCommand; the awakeable's id is stored for the shared handlers."""
    kind = command["type"]
    if kind == "createAwakeable":
        awakeable_id, future = ctx.awakeable(type_hint=str)
        ctx.set(_awakeable_state(command["awakeableKey"]), awakeable_id)
        return kind, future
    if kind == "sleep":
        return kind, ctx.sleep(timedelta(milliseconds=command["timeoutMillis"]))
    if kind == "runThrowTerminalException":
        reason = command["reason"]

        def throw() -> str:
            raise restate.TerminalError(reason)

        return kind, ctx.run_typed("run should fail", throw)
    raise restate.TerminalError(f"unknown awaitable command {kind!r}")


async def _result_of(kind: str, future: typing.Any) -> str:
    value = await future
    return "sleep" if kind == "sleep" else str(value)


@interpreter.handler(name="interpretCommands")
async def interpret_commands(ctx: restate.ObjectContext, request: dict[str, typing.Any]) -> str:
    result = ""
    for command in request["commands"]:
        kind = command["type"]
        if kind == "awaitOne":
            result = await _result_of(*_awaitable(ctx, command["command"]))
        elif kind == "awaitAny":
            awaitables = [_awaitable(ctx, c) for c in command["commands"]]
            done, _pending = await restate.wait_completed(*[f for _, f in awaitables])
            first = next(i for i, (_, f) in enumerate(awaitables) if f in done)
            result = await _result_of(*awaitables[first])
        elif kind == "awaitAnySuccessful":
            awaitables = [_awaitable(ctx, c) for c in command["commands"]]
            kinds = {id(f): k for k, f in awaitables}
            async for future in restate.as_completed(*[f for _, f in awaitables]):
                try:
                    result = await _result_of(kinds[id(future)], future)
                    break
                except restate.TerminalError:
                    continue
            else:
                raise restate.TerminalError("all awaitables failed")
        elif kind == "awaitAwakeableOrTimeout":
            awakeable_id, awakeable = ctx.awakeable(type_hint=str)
            ctx.set(_awakeable_state(command["awakeableKey"]), awakeable_id)
            match await restate.select(awakeable=awakeable, timeout=ctx.sleep(timedelta(milliseconds=command["timeoutMillis"]))):
                case ["awakeable", value]:
                    result = value
                case _:
                    raise restate.TerminalError("await-timeout")
        elif kind == "resolveAwakeable":
            await _resolve(ctx, command)
            result = ""
        elif kind == "rejectAwakeable":
            await _reject(ctx, command)
            result = ""
        elif kind == "getEnvVariable":
            result = await ctx.run_typed("get env", functools.partial(os.environ.get, command["envName"], ""))
        else:
            raise restate.TerminalError(f"unknown command {kind!r}")
        ctx.set(RESULTS, [*(await ctx.get(RESULTS) or []), result])
    return result


async def _awakeable_id(ctx: typing.Any, awakeable_key: str) -> str:
    awakeable_id = await ctx.get(_awakeable_state(awakeable_key))
    if awakeable_id is None:
        raise restate.TerminalError(f"no awakeable is registered under {awakeable_key!r}")
    return str(awakeable_id)


async def _resolve(ctx: typing.Any, request: dict[str, str]) -> None:
    ctx.resolve_awakeable(await _awakeable_id(ctx, request["awakeableKey"]), request["value"])


async def _reject(ctx: typing.Any, request: dict[str, str]) -> None:
    ctx.reject_awakeable(await _awakeable_id(ctx, request["awakeableKey"]), request["reason"])


@interpreter.handler(name="resolveAwakeable", kind="shared")
async def interpreter_resolve_awakeable(ctx: restate.ObjectSharedContext, request: dict[str, str]) -> None:
    await _resolve(ctx, request)


@interpreter.handler(name="rejectAwakeable", kind="shared")
async def interpreter_reject_awakeable(ctx: restate.ObjectSharedContext, request: dict[str, str]) -> None:
    await _reject(ctx, request)


@interpreter.handler(name="hasAwakeable", kind="shared")
async def interpreter_has_awakeable(ctx: restate.ObjectSharedContext, awakeable_key: str) -> bool:
    return await ctx.get(_awakeable_state(awakeable_key)) is not None


@interpreter.handler(name="getResults", kind="shared")
async def interpreter_get_results(ctx: restate.ObjectSharedContext) -> list[str]:
    return await ctx.get(RESULTS) or []


services = [
    interpreter,
    counter,
    proxy,
    list_object,
    map_object,
    failing,
    utils,
    awakeable_holder,
    cancel_runner,
    cancel_blocking,
    kill_runner,
    kill_singleton,
    block_and_wait,
    non_deterministic,
]
