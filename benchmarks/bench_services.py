"""The services the benchmark drives, written against the official Restate Python SDK (`import restate`).

The same file is served by durio (benchmarks/durio_app.py puts durio in
`restate`'s place before importing it) and can be served by the official
`restate-sdk` package behind a Restate server, so the two run identical code.

Workloads (see run.py for the HTTP side of each):
  Noop.noop        no journal steps: the floor of one durable invocation
  Steps.run        three ctx.run_typed steps, the seed's subscription shape (pay, then one step per subscription)
  Counter.add      virtual object, exclusive handler: read state, add, write state, return the new value
  Caller.call      a request-response call to Callee.echo (two invocations per request)
  Sleeper.sleep    a 10 ms durable sleep (a timer written, fired and replayed)
  Waiter + Mailbox one handler waits on an awakeable, another resolves it (below)

The awakeable rendezvous. Per cycle the load generator makes three requests,
all through the server:
  1. POST /restate/send/Waiter/wait  body "<mailbox key>"   -> 202 {invocationId}
     Waiter.wait creates an awakeable, sends its id to Mailbox/<key>.park
     (a one-way ctx.object_send), and suspends on the awakeable.
  2. POST /restate/call/Mailbox/<key>/resolve  body "<value>"
     Mailbox.resolve completes the parked awakeable with the value.
  3. GET /restate/attach/<invocationId>                      -> 200 "<value>"
     waits for Waiter.wait to wake up and return the value.
Step 2 can overtake the park message (the send in step 1 only promises the
waiter will run, not that it already has), so Mailbox is a rendezvous: both
handlers are exclusive on the same key, and whichever arrives second
completes the awakeable. park stores the id if no value is waiting, resolve
stores the value if no id is parked. Each load generator connection uses its
own mailbox key, so one waiter is in flight per key and nothing crosses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import restate

# ------------------------------------------------------------------ no steps

noop_service = restate.Service("Noop")


@noop_service.handler()
async def noop(ctx: restate.Context) -> str:
    return "ok"


# ------------------------------------------------------------------ three run steps (the seed's shape)


@dataclass
class SubscriptionRequest:
    userId: str  # noqa: N815 (the seed's JSON field names)
    creditCard: str  # noqa: N815
    subscriptions: list[str]


def create_recurring_payment(credit_card: str, payment_id: str) -> str:
    return f"payRef-{payment_id}"


def create_subscription(user_id: str, subscription: str, payment_ref: str) -> str:
    return "SUCCESS"


steps_service = restate.Service("Steps")


@steps_service.handler()
async def run(ctx: restate.Context, req: SubscriptionRequest) -> None:
    payment_id = str(ctx.uuid())
    pay_ref = await ctx.run_typed("pay", create_recurring_payment, restate.RunOptions(), req.creditCard, payment_id)
    for subscription in req.subscriptions:
        await ctx.run_typed(f"add-{subscription}", create_subscription, restate.RunOptions(), req.userId, subscription, pay_ref)


# ------------------------------------------------------------------ per-key state

counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    value = (await ctx.get("count", type_hint=int) or 0) + delta
    ctx.set("count", value)
    return value


# ------------------------------------------------------------------ request-response call

callee = restate.Service("Callee")


@callee.handler()
async def echo(ctx: restate.Context, message: str) -> str:
    return message


caller = restate.Service("Caller")


@caller.handler()
async def call(ctx: restate.Context, message: str) -> str:
    return await ctx.service_call(echo, message)


# ------------------------------------------------------------------ durable timer

sleeper = restate.Service("Sleeper")


@sleeper.handler()
async def sleep(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(milliseconds=10))
    return "ok"


# ------------------------------------------------------------------ awakeable: one waits, another resolves

mailbox = restate.VirtualObject("Mailbox")


@mailbox.handler()
async def park(ctx: restate.ObjectContext, awakeable_id: str) -> None:
    early_value = await ctx.get("early_value", type_hint=str)
    if early_value is None:
        ctx.set("parked", awakeable_id)
        return
    ctx.clear("early_value")
    ctx.resolve_awakeable(awakeable_id, early_value)


@mailbox.handler()
async def resolve(ctx: restate.ObjectContext, value: str) -> bool:
    """True when it completed a parked awakeable, False when it left the value for park to deliver."""
    parked = await ctx.get("parked", type_hint=str)
    if parked is None:
        ctx.set("early_value", value)
        return False
    ctx.clear("parked")
    ctx.resolve_awakeable(parked, value)
    return True


waiter = restate.Service("Waiter")


@waiter.handler()
async def wait(ctx: restate.Context, mailbox_key: str) -> str:
    awakeable_id, woken = ctx.awakeable(type_hint=str)
    ctx.object_send(park, mailbox_key, awakeable_id)
    return await woken


services = [noop_service, steps_service, counter, callee, caller, sleeper, mailbox, waiter]
