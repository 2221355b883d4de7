"""Services for the kill -9 soak (scripts/soak.py): every kind of step, recorded outside durio.

Each execution of a `run` step appends "<invocation id> <step> <what for>" to the file
named by the SOAK_LOG environment variable (O_APPEND, one write per line), so the soak
can count how many times every step of every invocation really ran, across kills.

  Orders.process(order)       run "reserve", a durable sleep, a call to Counter/<key>/add,
                              a send (delayed for odd amounts) to Audit/record, an awakeable
                              that Payments/confirm resolves, run "charge"; returns what it did
  Counter/<key>.add(addition) exclusive: a run step "lock-enter" that logs its entry and exit
                              (so the soak sees two exclusive handlers of one key overlap),
                              then appends the addition's ref to a ledger in state and adds
                              its amount to the total; returns the new total
  Counter/<key>.peek()        shared: the total and the ledger
  Audit.record(ref)           run "audit"; returns the ref
  Payments.confirm(id)        resolves the awakeable `id` with "confirmed"
  Onboarding/<id>.run(name)   a workflow: run "welcome", a durable sleep, waits for the promise
                              "email" that Onboarding/<id>.verify resolves; state; a result

For the disk-full soak (tests/test_soak.py), whose steps return a fresh nonce that they also log
("<invocation id> <step> <subject> <nonce>"), so the soak sees which execution's result was journaled:

  Tally/<key>.add(addition)   exclusive: run "tally", then the ref into a ledger and the amount into
                              the total in state; returns the new total
  Saga.book(booking)          run "reserve", then waits 60 s (a sleep or an awakeable nobody resolves);
                              cancelled (in the step or the wait), it compensates: calls Refunds.refund,
                              sleeps, run "compensated", and re-raises the cancellation (409)
  Refunds.refund(booking)     sleeps (long enough that its caller suspends), run "refund"; returns
                              "refunded-<booking id>"

With SOAK_LOG_PIDS=1, each line starts with the pid of the process that ran the step
("<pid> <invocation id> <step> <what for>").

SOAK_FAULT (comma-separated) plants the faults the soak must catch, to test the soak itself:
"double-ledger" writes some refs twice into a counter's ledger, "rerun-step" logs some
"charge" steps twice, "fail-probe" fails Counter/probe*/peek (the soak's probes of the
partitions whose worker survives a kill) with a 500.
"""

from __future__ import annotations

import dataclasses
import os
import typing
import uuid
from datetime import timedelta

import anyio

import durio as restate

FAULTS = set(filter(None, os.environ.get("SOAK_FAULT", "").split(",")))
LOCK_S = float(os.environ.get("SOAK_LOCK_MS", "2")) / 1000  # how long Counter.add's step holds the key


# The kill -9 soak runs several worker processes: it asks for each line to start with the pid of the process
# that ran the step, so it can tell worker lifetimes apart.
LOG_PIDS = os.environ.get("SOAK_LOG_PIDS") == "1"


def record_execution(invocation_id: str, step: str, subject: str) -> None:
    line = f"{invocation_id} {step} {subject}\n"
    fd = os.open(os.environ["SOAK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (f"{os.getpid()} {line}" if LOG_PIDS else line).encode())
    finally:
        os.close(fd)


@dataclasses.dataclass
class Addition:
    ref: str
    amount: int


@dataclasses.dataclass
class Order:
    id: str
    amount: int
    counter: str
    sleep_ms: int = 20


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: restate.ObjectContext, addition: Addition) -> int:
    invocation_id, where = ctx.request().id, f"{ctx.key()}:{os.getpid()}"

    async def hold() -> str:
        record_execution(invocation_id, "lock-enter", where)
        await anyio.sleep(LOCK_S)
        record_execution(invocation_id, "lock-exit", where)
        return where

    await ctx.run_typed("lock-enter", hold)
    ledger = await ctx.get("ledger", type_hint=list[str]) or []
    total = await ctx.get("total", type_hint=int) or 0
    ledger.append(addition.ref)
    if "double-ledger" in FAULTS and addition.ref.endswith("3"):
        ledger.append(addition.ref)
    ctx.set("ledger", ledger)
    ctx.set("total", total + addition.amount)
    return total + addition.amount


@counter.handler(kind="shared")
async def peek(ctx: restate.ObjectSharedContext) -> dict:
    if "fail-probe" in FAULTS and ctx.key().startswith("probe"):
        raise restate.TerminalError("a planted failure of a probe", status_code=500)
    return {"total": await ctx.get("total", type_hint=int) or 0, "ledger": await ctx.get("ledger", type_hint=list[str]) or []}


audit = restate.Service("Audit")


@audit.handler()
async def record(ctx: restate.Context, ref: str) -> str:
    invocation_id = ctx.request().id

    async def write() -> str:
        record_execution(invocation_id, "audit", ref)
        return ref

    return await ctx.run_typed("audit", write)


payments = restate.Service("Payments")


@payments.handler()
async def confirm(ctx: restate.Context, awakeable_id: str) -> None:
    ctx.resolve_awakeable(awakeable_id, "confirmed")


orders = restate.Service("Orders")


@orders.handler()
async def process(ctx: restate.Context, order: Order) -> dict:
    invocation_id = ctx.request().id

    async def reserve() -> str:
        record_execution(invocation_id, "reserve", order.id)
        return f"res-{order.id}"

    reservation = await ctx.run_typed("reserve", reserve)
    await ctx.sleep(timedelta(milliseconds=order.sleep_ms))
    total = await ctx.object_call(add, order.counter, Addition(ref=order.id, amount=order.amount))
    ctx.service_send(record, order.id, send_delay=timedelta(milliseconds=order.amount * 5) if order.amount % 2 else None)
    awakeable_id, confirmation = ctx.awakeable(type_hint=str)
    ctx.service_send(confirm, awakeable_id)
    confirmed = await confirmation

    async def charge() -> str:
        record_execution(invocation_id, "charge", order.id)
        if "rerun-step" in FAULTS and order.id.endswith("5"):
            record_execution(invocation_id, "charge", order.id)
        return f"charged-{order.amount}"

    charged = await ctx.run_typed("charge", charge)
    return {"order": order.id, "reservation": reservation, "charge": charged, "counter_total": total, "confirmation": confirmed}


onboarding = restate.Workflow("Onboarding")


@onboarding.main()
async def run(ctx: restate.WorkflowContext, name: str) -> str:
    invocation_id = ctx.request().id

    async def welcome() -> str:
        record_execution(invocation_id, "welcome", name)
        return f"welcome {name}"

    greeting = await ctx.run_typed("welcome", welcome)
    await ctx.sleep(timedelta(milliseconds=30))
    email = await ctx.promise("email", type_hint=str).value()
    ctx.set("stage", "verified")
    return f"{greeting} at {email}"


@onboarding.handler()
async def verify(ctx: restate.WorkflowSharedContext, email: str) -> None:
    await ctx.promise("email", type_hint=str).resolve(email)


# ---------------------------------------------------------------- the disk-full soak's services


def nonce_step(invocation_id: str, step: str, subject: str) -> typing.Callable[[], str]:
    """A `run` action that logs its execution with a fresh nonce and returns the nonce."""

    def action() -> str:
        nonce = uuid.uuid4().hex
        record_execution(invocation_id, step, f"{subject} {nonce}")
        return nonce

    return action


tally = restate.VirtualObject("Tally")


@tally.handler(name="add")
async def tally_add(ctx: restate.ObjectContext, addition: Addition) -> int:
    await ctx.run_typed("tally", nonce_step(ctx.request().id, "tally", addition.ref))
    ledger = await ctx.get("ledger", type_hint=list[str]) or []
    total = await ctx.get("total", type_hint=int) or 0
    ctx.set("ledger", [*ledger, addition.ref])
    ctx.set("total", total + addition.amount)
    return total + addition.amount


@tally.handler(name="peek", kind="shared")
async def tally_peek(ctx: restate.ObjectSharedContext) -> dict:
    return {"total": await ctx.get("total", type_hint=int) or 0, "ledger": await ctx.get("ledger", type_hint=list[str]) or []}


@dataclasses.dataclass
class Booking:
    id: str
    wait: str  # "sleep" or "awakeable": what the saga waits on until it is cancelled
    refund_ms: int  # how long the compensation's callee sleeps
    after_ms: int  # how long the compensation sleeps after the call


refunds = restate.Service("Refunds")


@refunds.handler()
async def refund(ctx: restate.Context, booking: Booking) -> str:
    await ctx.sleep(timedelta(milliseconds=booking.refund_ms))
    await ctx.run_typed("refund", nonce_step(ctx.request().id, "refund", booking.id))
    return f"refunded-{booking.id}"


saga = restate.Service("Saga")


@saga.handler()
async def book(ctx: restate.Context, booking: Booking) -> str:
    invocation_id = ctx.request().id
    try:  # a cancellation can arrive before the step or during it: it is compensated all the same
        await ctx.run_typed("reserve", nonce_step(invocation_id, "reserve", booking.id))
        if booking.wait == "sleep":
            await ctx.sleep(timedelta(seconds=60))
        else:
            _, never = ctx.awakeable(type_hint=str)
            await never
    except restate.TerminalError:
        refunded = await ctx.service_call(refund, booking)
        await ctx.sleep(timedelta(milliseconds=booking.after_ms))
        await ctx.run_typed("compensated", nonce_step(invocation_id, "compensated", refunded))
        raise
    return "kept"


services = [counter, audit, payments, orders, onboarding, tally, refunds, saga]
