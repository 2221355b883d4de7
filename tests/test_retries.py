"""Retries: run steps with RunOptions, invocation retry policies, journal mismatches, worker threads."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import timedelta

import pytest
import anyio

import durio as restate
from durio.actors.runtime import RuntimeConfig
from durio.sdk.options import DEFAULT_INVOCATION_BACKOFF, Backoff, invocation_backoff
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
        await ctx.run_typed(
            "charge", charge, restate.RunOptions(max_attempts=3, initial_retry_interval=timedelta(milliseconds=10))
        )
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


@flaky.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_attempts=3, on_max_attempts="kill"
    )
)
async def doomed(ctx: restate.Context) -> str:
    attempts["doomed"] = attempts.get("doomed", 0) + 1
    raise RuntimeError("always broken")


@flaky.handler(
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_attempts=2, on_max_attempts="pause"
    )
)
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


# A service-level policy, which the handlers inherit unless they set their own.
strict = restate.Service(
    "Strict",
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_attempts=2, on_max_attempts="kill"
    ),
)


@strict.handler()
async def always_broken(ctx: restate.Context) -> str:
    attempts["always_broken"] = attempts.get("always_broken", 0) + 1
    raise RuntimeError("broken on every attempt")


@strict.handler(invocation_retry_policy=restate.InvocationRetryPolicy(max_attempts=4))
async def more_patient(ctx: restate.Context) -> str:
    attempts["more_patient"] = attempts.get("more_patient", 0) + 1
    raise RuntimeError("also broken on every attempt")


replayed = restate.Service("Replayed")
# invocation id -> what each attempt drew from ctx.random() and ctx.uuid()
draws: dict[str, list[tuple[float, str]]] = {}


@replayed.handler()
async def draw(ctx: restate.Context) -> dict:
    number = ctx.random().random()
    drawn_uuid = str(ctx.uuid())
    tries = draws.setdefault(ctx.request().id, [])
    tries.append((number, drawn_uuid))
    await ctx.run_typed("step", lambda: "done")
    if len(tries) == 1:
        raise RuntimeError("fail once after the step")
    return {"number": number, "uuid": drawn_uuid}


@replayed.handler()
async def old_style_run(ctx: restate.Context) -> int:
    def add(a: int, b: int) -> int:
        attempts["old_style_step"] = attempts.get("old_style_step", 0) + 1
        return a + b

    total = await ctx.run("add", add, args=(40, 2))
    attempts["old_style_handler"] = attempts.get("old_style_handler", 0) + 1
    if attempts["old_style_handler"] == 1:
        raise RuntimeError("fail once after the step")
    return total


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    attempts.clear()
    threads.clear()
    draws.clear()
    take_other_path["on"] = False
    return await start_in_process(nursery, [flaky, strict, replayed], data_dir)


async def test_a_run_with_max_attempts_raises_terminal_error_the_handler_can_catch(server) -> None:
    response = await server.ingress.post("/restate/call/Flaky/limited")
    assert response.status_code == 200
    # The official SDK's message for an exhausted step: the last failure's repr.
    assert response.json() == "gave up: RuntimeError('card reader offline')"
    assert attempts["charge"] == 3


async def test_a_failing_run_is_retried_until_it_succeeds(server) -> None:
    response = await server.ingress.post("/restate/call/Flaky/eventually")
    assert response.json() == 4
    view = (await server.admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    assert view["retry_count"] == 3
    assert view["status"] == "completed"
    failures = [event for event in view["events"] if event["kind"] == "attempt_failed"]
    assert [f["message"] for f in failures] == [f"ValueError('not yet ({n})')" for n in (1, 2, 3)]


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
    await anyio.sleep(0.2)
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
    started = anyio.current_time()
    response = await server.ingress.post("/restate/call/Flaky/retry_after")
    assert response.json() == 2
    assert anyio.current_time() - started >= 0.3


async def test_get_logger_is_quiet_while_the_journal_is_replayed(server, caplog) -> None:
    caplog.set_level("INFO", logger="tests.retries.handler")
    response = await server.ingress.post("/restate/call/Flaky/logging_twice_tried")
    assert response.json() == "done"
    messages = [record.getMessage() for record in caplog.records if record.name == "tests.retries.handler"]
    assert messages == ["starting", "after the step, attempt 1", "after the step, attempt 2"]


# ---------------------------------------------------------------- invocation retry policies


def test_the_default_invocation_backoff_is_50ms_doubling_to_10s_with_jitter() -> None:
    backoff = DEFAULT_INVOCATION_BACKOFF
    assert RuntimeConfig().invocation_backoff == backoff, "a runtime without a policy uses the default"
    assert backoff.max_attempts is None and backoff.max_duration_s is None
    assert not backoff.exhausted(10_000, elapsed_s=7 * 24 * 3600.0), "the default retries forever"
    rng = random.Random(20240607)
    for failures in range(1, 13):
        base = min(10.0, 0.05 * 2 ** (failures - 1))
        delays = [backoff.delay_s(failures, rng) for _ in range(200)]
        assert all(base * 0.75 - 1e-9 <= d <= base * 1.25 + 1e-9 for d in delays), (failures, base, min(delays), max(delays))
        assert len(set(delays)) > 1, "the delay has jitter"
        assert min(delays) < base < max(delays), "the jitter spreads on both sides of the base delay"
    assert backoff.delay_s(12, rng) <= 12.5, "capped at 10 s (plus jitter)"
    without_jitter = Backoff(jitter=0.0)
    assert [without_jitter.delay_s(n) for n in (1, 2, 3, 8, 9, 20)] == [0.05, 0.1, 0.2, 6.4, 10.0, 10.0]


def test_a_handler_policy_takes_precedence_over_the_service_policy_field_by_field() -> None:
    service_policy = restate.InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=10), max_interval=timedelta(seconds=1), max_attempts=2, on_max_attempts="kill"
    )
    handler_policy = restate.InvocationRetryPolicy(initial_interval=timedelta(milliseconds=30), max_attempts=4)
    resolved = invocation_backoff(handler_policy, service_policy)
    assert resolved.initial_s == 0.03 and resolved.max_attempts == 4  # the handler's
    assert resolved.max_s == 1.0 and resolved.on_max_attempts == "kill"  # the service's, where the handler is silent
    assert resolved.factor == 2.0  # the default, where both are silent
    assert invocation_backoff(None, service_policy).max_attempts == 2


async def test_the_runtime_resolves_the_handler_policy_over_the_service_policy(server) -> None:
    runtime = server.runtime
    inherited = runtime.backoff_for(strict.handlers["always_broken"])
    assert (inherited.initial_s, inherited.max_attempts, inherited.on_max_attempts) == (0.01, 2, "kill")
    overridden = runtime.backoff_for(strict.handlers["more_patient"])
    assert (overridden.initial_s, overridden.max_attempts, overridden.on_max_attempts) == (0.01, 4, "kill")
    assert runtime.backoff_for(flaky.handlers["eventually"]) == DEFAULT_INVOCATION_BACKOFF


async def test_a_service_level_retry_policy_kills_the_invocation_after_max_attempts(server) -> None:
    with anyio.fail_after(10):  # a wrong policy or a failed replay would retry forever
        response = await server.ingress.post("/restate/call/Strict/always_broken")
    assert response.status_code == 500, response.text
    assert response.json() == {"code": 500, "message": "RuntimeError('broken on every attempt')", "source": "invocation"}
    assert attempts["always_broken"] == 2
    view = (await server.admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    assert view["status"] == "completed" and view["retry_count"] == 2
    assert [event["kind"] for event in view["events"]].count("attempt_failed") == 2


async def test_a_handler_level_retry_policy_overrides_the_service_level_one(server) -> None:
    with anyio.fail_after(10):  # a wrong policy or a failed replay would retry forever
        response = await server.ingress.post("/restate/call/Strict/more_patient")
    assert response.status_code == 500, response.text
    assert "also broken on every attempt" in response.json()["message"]
    assert attempts["more_patient"] == 4


# ---------------------------------------------------------------- replay determinism


async def test_ctx_random_and_uuid_are_the_same_when_the_attempt_is_replayed(server) -> None:
    with anyio.fail_after(10):  # a wrong policy or a failed replay would retry forever
        response = await server.ingress.post("/restate/call/Replayed/draw")
    assert response.status_code == 200, response.text
    invocation_id = response.headers["x-restate-id"]
    tries = draws[invocation_id]
    assert len(tries) == 2, "the handler failed once after the step and was retried"
    assert tries[0] == tries[1]
    assert response.json() == {"number": tries[0][0], "uuid": tries[0][1]}
    assert uuid.UUID(tries[0][1]).version == 4
    # Seeded per invocation: another invocation draws other values.
    other = await server.ingress.post("/restate/call/Replayed/draw")
    assert other.status_code == 200
    assert other.json()["number"] != tries[0][0] and other.json()["uuid"] != tries[0][1]


async def test_the_older_ctx_run_form_journals_its_step_once_across_a_retry(server) -> None:
    with anyio.fail_after(10):  # a wrong policy or a failed replay would retry forever
        response = await server.ingress.post("/restate/call/Replayed/old_style_run")
    assert response.status_code == 200, response.text
    assert response.json() == 42
    assert attempts["old_style_handler"] == 2, "the handler ran twice"
    assert attempts["old_style_step"] == 1, "the step ran once; the retry replayed its journaled result"
    view = (await server.admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    assert view["retry_count"] == 1
    assert [entry["name"] for entry in view["journal"] if entry["type"] == "run"] == ["add"], view["journal"]
