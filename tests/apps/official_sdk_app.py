"""Services written with the official `restate-sdk` package (imported as `restate`), served over HTTP/1.1.

`hypercorn tests.apps.official_sdk_app:app` serves them; durio registers them
as a remote deployment. Each side effect appends a line to $SDK_EFFECTS_LOG.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import restate


def effect(line: str) -> str:
    with open(os.environ.get("SDK_EFFECTS_LOG", os.devnull), "a") as log:
        log.write(line + "\n")
    return line


shop = restate.Service("SdkShop")
cart = restate.VirtualObject("SdkCart")
approvals = restate.Workflow("SdkApproval")


@shop.handler()
async def order(ctx: restate.Context, item: str) -> str:
    receipt = await ctx.run_typed("reserve", effect, restate.RunOptions(), f"reserve {item}")
    if item == "unicorn":
        raise restate.TerminalError("unicorns are out of stock", 409)
    count = await ctx.object_call(add, key="shopper", arg=item)
    return f"{receipt}; cart has {count}"


@shop.handler()
async def nap(ctx: restate.Context, ms: int) -> str:
    await ctx.run_typed("before", effect, restate.RunOptions(), "before nap")
    await ctx.sleep(timedelta(milliseconds=ms))
    await ctx.run_typed("after", effect, restate.RunOptions(), "after nap")
    return f"napped {ms}"


@shop.handler()
async def wait_for_payment(ctx: restate.Context) -> dict:
    awakeable_id, payment = ctx.awakeable()
    await ctx.run_typed("publish", effect, restate.RunOptions(), f"awakeable {awakeable_id}")
    return await payment


@shop.handler()
async def long_task(ctx: restate.Context, tag: str) -> str:
    """Sleeps for a minute; a cancellation during the sleep runs one compensation step, then fails."""
    await ctx.run_typed("start", effect, restate.RunOptions(), f"start {tag}")
    try:
        await ctx.sleep(timedelta(seconds=60))
    except restate.TerminalError as exc:
        await ctx.run_typed("compensate", effect, restate.RunOptions(), f"compensate {tag} after {exc.status_code} {exc.message}")
        raise
    await ctx.run_typed("finish", effect, restate.RunOptions(), f"finish {tag}")
    return f"finished {tag}"


@shop.handler()
async def ask_local(ctx: restate.Context, item: str) -> str:
    """Calls LocalBack.stamp, a durio service running in-process in the durio server (tests/apps/mixed_app.py)."""
    answer = await ctx.generic_call("LocalBack", "stamp", json.dumps(item).encode())
    return f"remote saw: {json.loads(answer)}"


@cart.handler()
async def add(ctx: restate.ObjectContext, item: str) -> int:
    items = await ctx.get("items") or []
    items.append(item)
    ctx.set("items", items)
    return len(items)


@cart.handler(kind="shared")
async def items(ctx: restate.ObjectSharedContext) -> list:
    return await ctx.get("items") or []


@approvals.main()
async def run(ctx: restate.WorkflowContext, request: str) -> str:
    ctx.set("stage", "waiting")
    decision = await ctx.promise("decision").value()
    ctx.set("stage", "decided")
    return f"{request}: {decision}"


@approvals.handler()
async def decide(ctx: restate.WorkflowSharedContext, decision: str) -> None:
    await ctx.promise("decision").resolve(decision)


@approvals.handler()
async def stage(ctx: restate.WorkflowSharedContext) -> str:
    return await ctx.get("stage") or "none"


app = restate.app([shop, cart, approvals])
