"""Workflows: the run executes once per id, shared handlers run beside it, durable promises deliver once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import anyio

import durio as restate
from tests import rawhttp
from tests.conftest import start_in_process, wait_until

approval = restate.Workflow("Approval")
runs: list[str] = []
deliveries: list[str] = []


@approval.main(workflow_retention=timedelta(milliseconds=400))
async def run(ctx: restate.WorkflowContext, request: str) -> dict:
    runs.append(ctx.key())
    ctx.set("stage", "waiting")
    decision = await ctx.promise("decision", type_hint=str).value()

    async def deliver() -> str:
        deliveries.append(decision)
        return decision

    delivered = await ctx.run_typed("deliver", deliver)
    ctx.set("stage", "decided")
    return {"request": request, "decision": delivered}


@approval.handler()
async def decide(ctx: restate.WorkflowSharedContext, decision: str) -> None:
    await ctx.promise("decision", type_hint=str).resolve(decision)


@approval.handler()
async def refuse(ctx: restate.WorkflowSharedContext, reason: str) -> None:
    await ctx.promise("decision").reject(reason, 403)


@approval.handler()
async def stage(ctx: restate.WorkflowSharedContext) -> dict:
    return {"stage": await ctx.get("stage") or "none", "peek": await ctx.promise("decision", type_hint=str).peek()}


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    runs.clear()
    deliveries.clear()
    return await start_in_process(nursery, [approval], data_dir)


async def test_the_run_executes_once_under_concurrent_duplicate_calls(server) -> None:
    url = server.running.ingress_url + "/restate/call/Approval/wf-1/run"
    answers: list[tuple[int, bytes]] = []

    async def call() -> None:
        answers.append(await rawhttp.request(url, body="expense"))

    async with anyio.create_task_group() as nursery:
        for _ in range(20):
            nursery.start_soon(call)
        await wait_until(lambda: _count_at_least(answers, 19))
        assert sorted(status for status, _ in answers) == [409] * 19
        assert all(b"the workflow method was already invoked" in body for _, body in answers)
        decided = await server.ingress.post("/restate/call/Approval/wf-1/decide", json="yes")
        assert decided.status_code == 200
    assert sorted(status for status, _ in answers) == [200] + [409] * 19
    assert runs == ["wf-1"] and deliveries == ["yes"]


async def _count_at_least(items: list, count: int) -> bool:
    return len(items) >= count


async def test_a_second_send_is_previously_accepted(server) -> None:
    first = await server.ingress.post("/restate/send/Approval/wf-2/run", json="a")
    second = await server.ingress.post("/restate/send/Approval/wf-2/run", json="a")
    assert first.json()["status"] == "Accepted"
    assert second.json() == {"invocationId": first.json()["invocationId"], "status": "PreviouslyAccepted"}


async def test_a_promise_resolved_before_the_run_waits_is_delivered_once(server) -> None:
    assert (await server.ingress.post("/restate/call/Approval/wf-3/decide", json="early")).status_code == 200
    result = await server.ingress.post("/restate/call/Approval/wf-3/run", json="r")
    assert result.json() == {"request": "r", "decision": "early"}
    assert deliveries == ["early"]


async def test_a_promise_resolved_while_the_run_waits_is_delivered_once(nursery, data_dir) -> None:
    # Suspend at once, so the promise arrives for an invocation that is not in memory.
    runs.clear()
    deliveries.clear()
    server = await start_in_process(nursery, [approval], data_dir, suspend_after_s=0.0)
    sent = await server.ingress.post("/restate/send/Approval/wf-4/run", json="r")

    async def suspended() -> bool:
        view = (await server.admin.get(f"/invocations/{sent.json()['invocationId']}")).json()
        return view["status"] == "suspended"

    await wait_until(suspended)
    assert (await server.ingress.get("/restate/call/Approval/wf-4/stage")).json() == {"stage": "waiting", "peek": None}
    assert (await server.ingress.post("/restate/call/Approval/wf-4/decide", json="late")).status_code == 200
    result = await server.ingress.get("/restate/workflow/Approval/wf-4/attach")
    assert result.json() == {"request": "r", "decision": "late"}
    assert deliveries == ["late"]
    # Code outside run steps ran again when the suspended run was replayed; the step did not.
    assert runs == ["wf-4", "wf-4"]


async def test_completing_a_completed_promise_is_409(server) -> None:
    assert (await server.ingress.post("/restate/call/Approval/wf-5/decide", json="one")).status_code == 200
    again = await server.ingress.post("/restate/call/Approval/wf-5/decide", json="two")
    assert again.status_code == 409 and "already completed" in again.json()["message"]
    rejected = await server.ingress.post("/restate/call/Approval/wf-5/refuse", json="no")
    assert rejected.status_code == 409


async def test_a_rejected_promise_fails_the_run_with_its_code(server) -> None:
    await server.ingress.post("/restate/send/Approval/wf-6/run", json="r")
    await server.ingress.post("/restate/call/Approval/wf-6/refuse", json="over budget")
    result = await server.ingress.get("/restate/workflow/Approval/wf-6/attach")
    assert result.status_code == 403 and result.json()["message"] == "over budget"


async def test_the_result_stays_readable_then_state_and_promises_go_after_the_retention(server) -> None:
    sent = await server.ingress.post("/restate/send/Approval/wf-7/run", json="r")
    await server.ingress.post("/restate/call/Approval/wf-7/decide", json="ok")
    attached = await server.ingress.get(f"/restate/attach/{sent.json()['invocationId']}")
    assert attached.json() == {"request": "r", "decision": "ok"}
    output = await server.ingress.get("/restate/workflow/Approval/wf-7/output")
    assert output.json() == attached.json()
    assert (await server.ingress.get("/restate/call/Approval/wf-7/stage")).json() == {"stage": "decided", "peek": "ok"}

    async def purged() -> bool:
        return (await server.ingress.get("/restate/workflow/Approval/wf-7/output")).status_code == 404

    await wait_until(purged, timeout=10)
    assert (await server.ingress.get("/restate/call/Approval/wf-7/stage")).json() == {"stage": "none", "peek": None}
    again = await server.ingress.post("/restate/send/Approval/wf-7/run", json="r2")
    assert again.json()["status"] == "Accepted", "after the retention the workflow id is free again"


async def test_an_idempotency_key_on_a_workflow_run_is_400(server) -> None:
    response = await server.ingress.post("/restate/call/Approval/wf-8/run", json="r", headers={"Idempotency-Key": "k"})
    assert response.status_code == 400
