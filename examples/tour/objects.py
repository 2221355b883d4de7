"""Virtual Objects: state per key, one writer at a time, readers beside it."""

from __future__ import annotations

import datetime

import durio as restate

user_subscriptions = restate.VirtualObject("UserSubscriptions")


@user_subscriptions.handler()
async def add(ctx: restate.ObjectContext, subscription: str) -> None:
    # Get current subscriptions
    subscriptions = await ctx.get("subscriptions", type_hint=list[str]) or []

    # Add new subscription
    if subscription not in subscriptions:
        subscriptions.append(subscription)
    ctx.set("subscriptions", subscriptions)

    # Update metrics
    now = await ctx.time()
    ctx.set("lastUpdated", datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc).isoformat())


@user_subscriptions.handler(kind="shared")
async def getSubscriptions(ctx: restate.ObjectSharedContext) -> list[str]:  # noqa: N802 (the tour's handler name)
    return await ctx.get("subscriptions", type_hint=list[str]) or []
