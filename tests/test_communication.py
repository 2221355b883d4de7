"""Durable calls, one-way and delayed messages between handlers."""

from __future__ import annotations

import datetime

import pytest

import durio as restate
from tests.conftest import TOUR_APP, start_in_process, wait_until

caller = restate.Service("Caller")
callee = restate.Service("Callee")
calls: list[str] = []


@callee.handler()
async def echo(ctx: restate.Context, text: str) -> str:
    calls.append(text)
    return text.upper()


@callee.handler()
async def fail(ctx: restate.Context) -> str:
    raise restate.TerminalError("callee refused", 451)


@caller.handler()
async def twice(ctx: restate.Context, text: str) -> dict:
    future = ctx.service_call(echo, text)
    callee_id = await future.invocation_id()
    first = await future
    again = await ctx.service_call(echo, text, idempotency_key="same")
    deduplicated = await ctx.service_call(echo, text, idempotency_key="same")
    raw = await ctx.generic_call("Callee", "echo", b'"raw"')
    return {"first": first, "callee_id": callee_id, "again": again, "dedup": deduplicated, "raw": raw.decode()}


@caller.handler()
async def catch_failure(ctx: restate.Context) -> str:
    try:
        await ctx.service_call(fail, None)
    except restate.TerminalError as exc:
        return f"{exc.status_code}: {exc.message}"
    return "no error"


@caller.handler()
async def call_nowhere(ctx: restate.Context) -> str:
    try:
        await ctx.generic_call("Nowhere", "nothing", b"")
    except restate.TerminalError as exc:
        return f"{exc.status_code}"
    return "reached"


@caller.handler()
async def fire_and_forget(ctx: restate.Context, text: str) -> str:
    handle = ctx.service_send(echo, text)
    delayed = ctx.service_send(echo, text + "-later", send_delay=datetime.timedelta(milliseconds=300))
    return f"{await handle.invocation_id()} {await delayed.invocation_id()}"


ledger = restate.VirtualObject("Ledger")
approval = restate.Workflow("Approval")


@ledger.handler()
async def append(ctx: restate.ObjectContext, text: str) -> list:
    lines = (await ctx.get("lines", type_hint=list)) or []
    lines.append(text)
    ctx.set("lines", lines)
    return lines


@approval.main()
async def approve(ctx: restate.WorkflowContext, who: str) -> str:
    return f"approved {who} as {ctx.key()}"


@caller.handler()
async def every_kind(ctx: restate.Context) -> dict:
    """Each way of reaching another handler: keyed sends and calls, workflows, generic sends."""
    object_sent = ctx.object_send(append, key="l1", arg="sent")
    called = await ctx.object_call(append, key="l1", arg="called")
    workflow_result = await ctx.workflow_call(approve, key="wf-1", arg="ann")
    workflow_sent = ctx.workflow_send(approve, key="wf-2", arg="bob")
    generic_sent = ctx.generic_send("Callee", "echo", b'"generic"')
    return {
        "called": called,
        "workflow_result": workflow_result,
        "ids": [await handle.invocation_id() for handle in (object_sent, workflow_sent, generic_sent)],
    }


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    calls.clear()
    return await start_in_process(nursery, [caller, callee, ledger, approval], data_dir)


async def test_request_response_calls_idempotency_keys_and_generic_calls(server) -> None:
    response = await server.ingress.post("/restate/call/Caller/twice", json="hi")
    body = response.json()
    assert body["first"] == "HI" and body["again"] == "HI" and body["dedup"] == "HI" and body["raw"] == '"RAW"'
    assert calls == ["hi", "hi", "raw"], "the second idempotent call attached to the first"
    child = (await server.admin.get(f"/invocations/{body['callee_id']}")).json()
    assert child["invoked_by"] == response.headers["x-restate-id"]
    assert child["target"] == "Callee/echo"


async def test_a_callees_terminal_error_reaches_the_caller(server) -> None:
    assert (await server.ingress.post("/restate/call/Caller/catch_failure")).json() == "451: callee refused"


async def test_calling_a_missing_service_fails_the_call_not_the_caller(server) -> None:
    assert (await server.ingress.post("/restate/call/Caller/call_nowhere")).json() == "404"


async def test_one_way_and_delayed_messages(server) -> None:
    response = await server.ingress.post("/restate/call/Caller/fire_and_forget", json="msg")
    now_id, later_id = response.json().split()
    assert (await server.ingress.get(f"/restate/attach/{now_id}")).json() == "MSG"
    later = (await server.admin.get(f"/invocations/{later_id}")).json()
    assert later["status"] == "scheduled" and later["scheduled_at"] is not None
    assert (await server.ingress.get(f"/restate/attach/{later_id}")).json() == "MSG-LATER"
    assert calls == ["msg", "msg-later"]


async def test_the_tours_ticket_purchase_with_idempotency_and_a_scheduled_reminder(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    concert = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).strftime("%Y-%m-%dT20:00:00Z")
    request = {"ticketId": "ticket-789", "price": 100, "customerEmail": "fan@example.com", "concertDate": concert}
    async with server.client() as client, server.client(admin=True) as admin:
        bought = await client.post("/restate/call/ConcertTicketingService/buy", json=request)
        assert bought.status_code == 200
        assert bought.json().startswith("Ticket purchased successfully with payment reference: ")
        payment_ref = bought.json().rsplit(" ", 1)[1]

        first = await client.post(
            "/restate/call/ConcertTicketingService/buy", json=request, headers={"Idempotency-Key": "unique-key-123"}
        )
        second = await client.post(
            "/restate/call/ConcertTicketingService/buy", json=request, headers={"Idempotency-Key": "unique-key-123"}
        )
        assert first.json() == second.json() and first.json() != bought.json()

        listing = (await admin.get("/invocations", params={"status": "scheduled"})).json()["invocations"]
        reminders = [
            v for v in listing if v["target"] == "EmailService/sendReminder" and v["invoked_by"] == bought.headers["x-restate-id"]
        ]
        assert len(reminders) == 1
        expected = datetime.datetime.fromisoformat(concert.replace("Z", "+00:00")) - datetime.timedelta(days=1)
        scheduled_at = datetime.datetime.fromisoformat(
            reminders[0]["scheduled_at"].replace("Z", "+00:00").split(".")[0] + "+00:00"
        )
        assert abs((scheduled_at - expected).total_seconds()) < 2

        async def ticket_sent() -> bool:
            return ">>> Sent ticket ticket-789 to fan@example.com" in server.output()

        await wait_until(ticket_sent)
    output = server.output()
    assert output.count(f"{payment_ref}") == 1
    assert output.count(">>> Charged") == 2, "the idempotent retry did not charge again"
    assert server.terminate() == 0


async def test_object_and_workflow_calls_and_sends_and_generic_sends(server) -> None:
    response = await server.ingress.post("/restate/call/Caller/every_kind")
    assert response.status_code == 200, response.text
    body = response.json()
    caller_id = response.headers["x-restate-id"]
    # The send was created first, so it ran first on the key: arrival order is the journal's.
    assert body["called"] == ["sent", "called"]
    assert body["workflow_result"] == "approved ann as wf-1"
    object_sent, workflow_sent, generic_sent = body["ids"]
    expected = {
        object_sent: ("Ledger/l1/append", None),
        workflow_sent: ("Approval/wf-2/approve", "approved bob as wf-2"),
        generic_sent: ("Callee/echo", "GENERIC"),
    }
    for invocation_id, (target, output) in expected.items():
        attached = await server.ingress.get(f"/restate/attach/{invocation_id}")
        assert attached.status_code == 200, attached.text
        if output is not None:
            assert attached.json() == output
        view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
        assert view["target"] == target and view["invoked_by"] == caller_id, view
    assert calls == ["generic"]
    state = (await server.admin.get("/state/Ledger/l1")).json()["state"]
    assert state == {"lines": ["sent", "called"]}
