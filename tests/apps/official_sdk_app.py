"""Services written with the official `restate-sdk` package (imported as `restate`), served over HTTP/1.1.

`hypercorn tests.apps.official_sdk_app:app` serves them; durio registers them
as a remote deployment. Each side effect appends a line to $SDK_EFFECTS_LOG.
"""

from __future__ import annotations

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
