"""Retries: run steps with RunOptions, invocation retry policies, journal mismatches, worker threads."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import trio

import durio as restate
from tests.conftest import start_in_process, wait_until

flaky = restate.Service("Flaky")
attempts: dict[str, int] = {}
threads: list[int] = []
take_other_path = {"on": False}


@flaky.handler()
async def limited(ctx: restate.Context) -> str:
    def charge() -> str:
        attempts["charge"] = attempts.get("charge", 0) + 1
        raise RuntimeError("card reader offline")

    try:
        await ctx.run_typed("charge", charge, restate.RunOptions(max_attempts=3, initial_retry_interval=timedelta(milliseconds=10)))
    except restate.TerminalError as exc:
        return f"gave up: {exc.message}"
    return "charged"


@flaky.handler()
async def eventually(ctx: restate.Context) -> int:
    def step() -> int:
        attempts["step"] = attempts.get("step", 0) + 1
        if attempts["step"] < 4:
            raise ValueError(f"not yet ({attempts['step']})")
        return attempts["step"]

    return await ctx.run_typed("step", step)


@flaky.handler(invocation_retry_policy=restate.InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=10), max_attempts=3, on_max_attempts="kill"))
async def doomed(ctx: restate.Context) -> str:
    attempts["doomed"] = attempts.get("doomed", 0) + 1
    raise RuntimeError("always broken")


@flaky.handler(invocation_retry_policy=restate.InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=10), max_attempts=2, on_max_attempts="pause"))
async def pausing(ctx: restate.Context) -> str:
    attempts["pausing"] = attempts.get("pausing", 0) + 1
    raise RuntimeError("broken until an operator looks")


@flaky.handler()
async def threaded(ctx: restate.Context) -> bool:
    def blocking() -> int:
        threads.append(threading.get_ident())
        return threading.get_ident()

    worker = await ctx.run_typed("blocking", blocking)
    return worker != threading.get_ident()


@flaky.handler()
async def changing(ctx: restate.Context) -> str:
    step = "b" if take_other_path["on"] else "a"
    await ctx.run_typed(step, lambda: step)
    if not take_other_path["on"]:
        take_other_path["on"] = True
        raise RuntimeError("fail once after step a")
    return "done"


@flaky.handler()
async def retry_after(ctx: restate.Context) -> int:
    attempts["retry_after"] = attempts.get("retry_after", 0) + 1
    if attempts["retry_after"] == 1:
        raise restate.RetryableError("come back later", retry_after=timedelta(milliseconds=300))
    return attempts["retry_after"]


handler_log = restate.getLogger("tests.retries.handler")


@flaky.handler()
async def logging_twice_tried(ctx: restate.Context) -> str:
    handler_log.info("starting")  # replayed on the second attempt: quiet
    await ctx.run_typed("step", lambda: "done")
    attempts["logging"] = attempts.get("logging", 0) + 1
    handler_log.info("after the step, attempt %d", attempts["logging"])  # live on both attempts
    if attempts["logging"] == 1:
        raise RuntimeError("fail once after the step")
    return "done"


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    attempts.clear()
    threads.clear()
    take_other_path["on"] = False
    return await start_in_process(nursery, [flaky], data_dir)


async def test_a_run_with_max_attempts_raises_terminal_error_the_handler_can_catch(server) -> None:
    response = await server.ingress.post("/restate/call/Flaky/limited")
    assert response.status_code == 200
    assert response.json().startswith("gave up: run 'charge' failed after 3 attempts")
    assert "card reader offline" in response.json()
    assert attempts["charge"] == 3


async def test_a_failing_run_is_retried_until_it_succeeds(server) -> None:
    response = await server.ingress.post("/restate/call/Flaky/eventually")
    assert response.json() == 4
    view = (await server.admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    assert view["retry_count"] == 3
    assert view["status"] == "completed"
    failures = [event for event in view["events"] if event["kind"] == "attempt_failed"]
    assert [f["message"] for f in failures] == [f"ValueError: not yet ({n})" for n in (1, 2, 3)]


async def test_retry_policy_with_kill_fails_the_invocation_after_max_attempts(server) -> None:
    response = await server.ingress.post("/restate/call/Flaky/doomed")
    assert response.status_code == 500
    assert "always broken" in response.json()["message"]
    assert attempts["doomed"] == 3


async def test_retry_policy_with_pause_pauses_the_invocation(server) -> None:
    sent = await server.ingress.post("/restate/send/Flaky/pausing")
    invocation_id = sent.json()["invocationId"]

    async def paused() -> bool:
        return (await server.admin.get(f"/invocations/{invocation_id}")).json()["status"] == "paused"

    await wait_until(paused)
    assert attempts["pausing"] == 2
    await trio.sleep(0.2)
    assert attempts["pausing"] == 2, "a paused invocation is not retried"


async def test_a_sync_run_function_runs_in_a_worker_thread(server) -> None:
    response = await server.ingress.post("/restate/call/Flaky/threaded")
    assert response.json() is True
    assert threads and threads[0] != threading.get_ident()


async def test_a_changed_code_path_is_a_journal_mismatch_that_fails_only_that_invocation(server) -> None:
    sent = await server.ingress.post("/restate/send/Flaky/changing")
    invocation_id = sent.json()["invocationId"]

    async def mismatched() -> bool:
        failure = (await server.admin.get(f"/invocations/{invocation_id}")).json()["last_failure"]
        return failure is not None and "journal mismatch" in failure["message"]

    await wait_until(mismatched)
    view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    failure = view["last_failure"]
    assert failure["code"] == 570
    assert "run 'b'" in failure["message"] and "run 'a'" in failure["message"]
    assert failure["related_entry_index"] == 1
    assert view["status"] != "completed"
    # The server is fine, and so is every other invocation.
    assert (await server.ingress.post("/restate/call/Flaky/threaded")).json() is True


async def test_retryable_error_retry_after_sets_the_delay(server) -> None:
    started = trio.current_time()
    response = await server.ingress.post("/restate/call/Flaky/retry_after")
    assert response.json() == 2
    assert trio.current_time() - started >= 0.3


async def test_get_logger_is_quiet_while_the_journal_is_replayed(server, caplog) -> None:
    caplog.set_level("INFO", logger="tests.retries.handler")
    response = await server.ingress.post("/restate/call/Flaky/logging_twice_tried")
    assert response.json() == "done"
    messages = [record.getMessage() for record in caplog.records if record.name == "tests.retries.handler"]
    assert messages == ["starting", "after the step, attempt 1", "after the step, attempt 2"]
