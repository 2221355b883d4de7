"""Virtual objects with lazy and eager state, written once and served two ways: with durio (`app`) and,
when LAZY_STATE_SDK=official, with the official restate-sdk. Both run behind hypercorn as deployments."""

from __future__ import annotations

import os
from datetime import timedelta

if os.environ.get("LAZY_STATE_SDK") == "official":
    import restate  # the official SDK, from PyPI
else:
    import durio as restate  # type: ignore[no-redef]

lazy = restate.VirtualObject("LazyState", enable_lazy_state=True)
preloaded_none = restate.VirtualObject("NotPreloaded", state_preload=False)
eager = restate.VirtualObject("EagerState")


async def churn(ctx: restate.ObjectContext) -> dict:
    ctx.set("a", 1)
    ctx.set("b", 2)
    ctx.clear("a")
    await ctx.sleep(timedelta(milliseconds=10))  # a suspension: what follows runs again after a replay
    keys = await ctx.state_keys()
    a = await ctx.get("a")
    b = await ctx.get("b")
    ctx.clear_all()
    after = await ctx.state_keys()
    ctx.set("c", 3)
    return {"keys": sorted(keys), "a": a, "b": b, "after_clear_all": after, "c": await ctx.get("c")}


async def peek(ctx: restate.ObjectContext) -> dict:
    return {"keys": sorted(await ctx.state_keys()), "c": await ctx.get("c")}


for service in (lazy, preloaded_none, eager):
    service.handler("churn")(churn)
    service.handler("peek")(peek)

app = restate.app([lazy, preloaded_none, eager])
