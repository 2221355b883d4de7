"""A virtual object whose exclusive handlers append to a list in state, for crash tests."""

from __future__ import annotations

from datetime import timedelta

import durio as restate

ledger = restate.VirtualObject("Ledger")


@ledger.handler()
async def hold(ctx: restate.ObjectContext, ms: int) -> list[str]:
    entries = await ctx.get("entries", type_hint=list[str]) or []
    entries.append("hold-start")
    ctx.set("entries", entries)
    await ctx.sleep(timedelta(milliseconds=ms))
    entries.append("hold-end")
    ctx.set("entries", entries)
    return entries


@ledger.handler()
async def append(ctx: restate.ObjectContext, item: str) -> int:
    entries = await ctx.get("entries", type_hint=list[str]) or []
    entries.append(item)
    ctx.set("entries", entries)
    return len(entries)


@ledger.handler(kind="shared")
async def entries(ctx: restate.ObjectSharedContext) -> list[str]:
    return await ctx.get("entries", type_hint=list[str]) or []


services = [ledger]
