"""Cancel, kill, pause, resume and purge: Restate's semantics and status codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import anyio

import durio as restate
from tests.conftest import start_in_process, wait_until

trips = restate.Service("Trips")
children = restate.Service("Children")
side_effects: list[str] = []


@trips.handler()
async def book(ctx: restate.Context, wait_ms: int) -> str:
    compensations: list[str] = []
    try:
        for step in ("flight", "hotel", "car"):
            compensations.append(step)
            await ctx.run_typed(f"book-{step}", lambda step=step: side_effects.append(f"book-{step}"))
            await ctx.sleep(timedelta(milliseconds=wait_ms))
        return "booked"
    except restate.TerminalError:
        for step in reversed(compensations):
            await ctx.run_typed(f"undo-{step}", lambda step=step: side_effects.append(f"undo-{step}"))
        raise


@trips.handler()
async def parent(ctx: restate.Context) -> str:
    ctx.service_send(child, 60_000)
    return await ctx.service_call(child, 60_000)


@trips.handler()
async def canceller(ctx: restate.Context, target: str) -> None:
    ctx.cancel_invocation(target)


@children.handler()
async def child(ctx: restate.Context, wait_ms: int) -> str:
    side_effects.append("child-started")
    await ctx.sleep(timedelta(milliseconds=wait_ms))
    return "child done"


# Backs off 60 s after each failed attempt: a cancellation that waited out the backoff would time the test out.
flaky = restate.Service(
    "FlakySaga",
    invocation_retry_policy=restate.InvocationRetryPolicy(
        initial_interval=timedelta(seconds=60), max_interval=timedelta(seconds=60)
    ),
)
step_release = anyio.Event()
step_failed = anyio.Event()


def fail_at_once() -> None:
    side_effects.append("charge")
    raise RuntimeError("the provider is down")


async def fail_when_released() -> None:
    side_effects.append("charge")
    await step_release.wait()
    step_failed.set()
    raise RuntimeError("the provider is down")


async def first_undo() -> None:
    """Lets the abandoned step fail while this compensation is still running."""
    side_effects.append("undo-1")
    step_release.set()
    await step_failed.wait()


@flaky.handler()
async def subscribe(ctx: restate.Context, mode: str) -> str:
    try:
        await ctx.run_typed("charge", fail_at_once if mode == "fails" else fail_when_released)
        return "subscribed"
    except restate.TerminalError:
        await ctx.run_typed("undo-1", first_undo if mode == "released" else lambda: side_effects.append("undo-1"))
        for undo in ("undo-2", "undo-3"):
            await ctx.run_typed(undo, lambda undo=undo: side_effects.append(undo))
        raise


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    global step_release, step_failed
    side_effects.clear()
    step_release, step_failed = anyio.Event(), anyio.Event()
    return await start_in_process(nursery, [trips, children, flaky], data_dir)


async def status_of(server, invocation_id: str) -> dict:  # type: ignore[no-untyped-def]
    return (await server.admin.get(f"/invocations/{invocation_id}")).json()


async def wait_for_effect(effect: str) -> None:
    async def seen() -> bool:
        return effect in side_effects

    await wait_until(seen)


async def test_cancelling_a_saga_mid_way_runs_its_compensations(server) -> None:
    sent = await server.ingress.post("/restate/send/Trips/book", json=60_000)
    invocation_id = sent.json()["invocationId"]
    await wait_for_effect("book-flight")
    response = await server.admin.patch(f"/invocations/{invocation_id}/cancel")
    assert response.status_code == 202
    result = await server.ingress.get(f"/restate/attach/{invocation_id}")
    assert result.status_code == 409 and result.json()["message"] == "canceled"
    assert side_effects == ["book-flight", "undo-flight"]


async def test_killing_a_saga_stops_it_without_compensations(server) -> None:
    sent = await server.ingress.post("/restate/send/Trips/book", json=60_000)
    invocation_id = sent.json()["invocationId"]
    await wait_for_effect("book-flight")
    response = await server.admin.patch(f"/invocations/{invocation_id}/kill")
    assert response.status_code == 200
    result = await server.ingress.get(f"/restate/attach/{invocation_id}")
    assert result.status_code == 409 and result.json()["message"] == "killed"
    assert side_effects == ["book-flight"]
    assert invocation_id not in server.runtime.router.actors


async def _children_of(server, parent_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    listing = (await server.admin.get("/invocations", params={"service": "Children"})).json()["invocations"]
    return [view for view in listing if view["invoked_by"] == parent_id]


async def _called_and_sent_child(server, parent_id: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(the child the parent called, the child it sent to), from the parent's journal."""
    journal = (await status_of(server, parent_id))["journal"]
    called = next(entry["callee_id"] for entry in journal if entry["type"] == "call")
    sent = next(entry["callee_id"] for entry in journal if entry["type"] == "one_way_call")
    return called, sent


async def _parent_with_both_children_started(server) -> str:  # type: ignore[no-untyped-def]
    """Send Trips.parent and wait until the child it sent to and the child it called both run."""
    sent = await server.ingress.post("/restate/send/Trips/parent")

    async def both_children_started() -> bool:
        return side_effects.count("child-started") == 2

    await wait_until(both_children_started)
    return sent.json()["invocationId"]


async def test_cancellation_reaches_called_children_but_not_sent_ones(server) -> None:
    parent_id = await _parent_with_both_children_started(server)
    assert (await server.admin.patch(f"/invocations/{parent_id}/cancel")).status_code == 202
    assert (await server.ingress.get(f"/restate/attach/{parent_id}")).status_code == 409
    kids = await _children_of(server, parent_id)
    assert len(kids) == 2

    async def called_child_cancelled() -> bool:
        views = await _children_of(server, parent_id)
        return any(v["status"] == "completed" and v.get("completion_failure", {}).get("code") == 409 for v in views)

    await wait_until(called_child_cancelled)
    called, sent_to = await _called_and_sent_child(server, parent_id)
    called_view, sent_view = await status_of(server, called), await status_of(server, sent_to)
    assert called_view["status"] == "completed" and called_view["completion_failure"]["code"] == 409
    assert sent_view["status"] != "completed", "the sent child keeps running"


async def test_kill_is_recursive_for_called_children(server) -> None:
    parent_id = await _parent_with_both_children_started(server)
    assert (await server.admin.patch(f"/invocations/{parent_id}/kill")).status_code == 200
    kids = await _children_of(server, parent_id)
    killed = [k for k in kids if k["status"] == "completed"]
    assert len(killed) == 1 and killed[0]["completion_failure"]["message"] == "killed"
    called, sent_to = await _called_and_sent_child(server, parent_id)
    assert killed[0]["id"] == called
    assert (await status_of(server, sent_to))["status"] != "completed", "the sent child keeps running"


async def test_a_handler_can_cancel_another_invocation(server) -> None:
    sent = await server.ingress.post("/restate/send/Trips/book", json=60_000)
    target = sent.json()["invocationId"]
    await wait_for_effect("book-flight")
    assert (await server.ingress.post("/restate/call/Trips/canceller", json=target)).status_code == 200
    assert (await server.ingress.get(f"/restate/attach/{target}")).status_code == 409
    assert side_effects == ["book-flight", "undo-flight"]


async def test_status_codes_of_cancel_kill_and_purge(server) -> None:
    unknown = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"
    for action in ("cancel", "kill", "purge", "pause", "resume"):
        assert (await server.admin.patch(f"/invocations/{unknown}/{action}")).status_code == 404
        assert (await server.admin.patch(f"/invocations/not-an-id/{action}")).status_code == 400
    assert (await server.admin.get(f"/invocations/{unknown}/cancel")).status_code == 405

    scheduled = (await server.ingress.post("/restate/send/Trips/book?delay=1h", json=1)).json()["invocationId"]
    assert (await status_of(server, scheduled))["status"] == "scheduled"
    assert (await server.admin.patch(f"/invocations/{scheduled}/purge")).status_code == 409, "not completed yet"
    assert (await server.admin.patch(f"/invocations/{scheduled}/cancel")).status_code == 200, "not started: ends at once"
    assert (await status_of(server, scheduled))["completion_failure"]["message"] == "canceled"
    assert (await server.admin.patch(f"/invocations/{scheduled}/cancel")).status_code == 409
    assert (await server.admin.patch(f"/invocations/{scheduled}/kill")).status_code == 409
    assert (await server.admin.patch(f"/invocations/{scheduled}/purge")).status_code == 200
    assert (await server.admin.get(f"/invocations/{scheduled}")).status_code == 404
    assert side_effects == []


async def test_pause_and_resume(server) -> None:
    sent = await server.ingress.post("/restate/send/Trips/book", json=300)
    invocation_id = sent.json()["invocationId"]
    await wait_for_effect("book-flight")
    paused = await server.admin.patch(f"/invocations/{invocation_id}/pause")
    assert paused.status_code in (200, 202)  # 200 if it had already suspended on its sleep

    async def is_paused() -> bool:
        return (await status_of(server, invocation_id))["status"] == "paused"

    if paused.status_code == 202:
        await wait_until(is_paused)
    await anyio.sleep(0.8)  # past the handler's 300 ms timer: its firing must not wake a paused invocation
    assert await is_paused()
    assert side_effects == ["book-flight"]
    assert (await server.admin.patch(f"/invocations/{invocation_id}/resume")).status_code == 200
    assert (await server.ingress.get(f"/restate/attach/{invocation_id}")).json() == "booked"
    assert side_effects == ["book-flight", "book-hotel", "book-car"]
    assert (await server.admin.patch(f"/invocations/{invocation_id}/pause")).status_code == 409
    assert (await server.admin.patch(f"/invocations/{invocation_id}/resume")).status_code == 409

    scheduled = (await server.ingress.post("/restate/send/Trips/book?delay=1h", json=1)).json()["invocationId"]
    assert (await server.admin.patch(f"/invocations/{scheduled}/resume")).status_code == 425
    assert (await server.admin.patch(f"/invocations/{scheduled}/pause")).status_code == 409


async def test_purge_frees_an_idempotency_key(server) -> None:
    first = await server.ingress.post("/restate/call/Children/child", json=1, headers={"Idempotency-Key": "once"})
    invocation_id = first.headers["x-restate-id"]
    assert (await server.admin.patch(f"/invocations/{invocation_id}/purge")).status_code == 200
    again = await server.ingress.post("/restate/call/Children/child", json=1, headers={"Idempotency-Key": "once"})
    assert again.headers["x-restate-id"] == invocation_id
    assert side_effects == ["child-started", "child-started"]


async def test_cancelling_an_invocation_that_is_retrying_a_step_unwinds_at_once(server) -> None:
    sent = await server.ingress.post("/restate/send/FlakySaga/subscribe", json="fails")
    invocation_id = sent.json()["invocationId"]

    async def backing_off() -> bool:
        return (await status_of(server, invocation_id))["status"] == "backing-off"

    await wait_until(backing_off)
    assert side_effects == ["charge"]
    assert (await server.admin.patch(f"/invocations/{invocation_id}/cancel")).status_code == 202
    with anyio.fail_after(20):  # well inside the 60 s backoff: the cancellation did not wait it out
        result = await server.ingress.get(f"/restate/attach/{invocation_id}")
    assert result.status_code == 409 and result.json()["message"] == "canceled"
    # The failing step is not run again for nothing, and every compensation runs once, in order.
    assert side_effects == ["charge", "undo-1", "undo-2", "undo-3"]


async def test_a_step_failing_after_its_handler_was_cancelled_does_not_cut_the_compensations_short(server) -> None:
    sent = await server.ingress.post("/restate/send/FlakySaga/subscribe", json="released")
    invocation_id = sent.json()["invocationId"]
    await wait_for_effect("charge")
    assert (await server.admin.patch(f"/invocations/{invocation_id}/cancel")).status_code == 202
    with anyio.fail_after(20):  # the first compensation lets the abandoned step fail, then finishes
        result = await server.ingress.get(f"/restate/attach/{invocation_id}")
    assert result.status_code == 409
    assert side_effects == ["charge", "undo-1", "undo-2", "undo-3"]
    described = await status_of(server, invocation_id)
    assert described["retry_count"] == 0, described


async def test_cancelling_a_paused_invocation_unwinds_it_with_its_compensations(server) -> None:
    sent = await server.ingress.post("/restate/send/Trips/book", json=60_000)
    invocation_id = sent.json()["invocationId"]
    await wait_for_effect("book-flight")
    assert (await server.admin.patch(f"/invocations/{invocation_id}/pause")).status_code in (200, 202)

    async def is_paused() -> bool:
        return (await status_of(server, invocation_id))["status"] == "paused"

    await wait_until(is_paused)
    assert (await server.admin.patch(f"/invocations/{invocation_id}/cancel")).status_code == 202
    with anyio.fail_after(10):
        result = await server.ingress.get(f"/restate/attach/{invocation_id}")
    assert result.status_code == 409 and result.json()["message"] == "canceled"
    assert side_effects == ["book-flight", "undo-flight"]
