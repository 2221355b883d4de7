"""An in-process durio service that calls a service of a remote deployment (SdkShop, from official_sdk_app)."""

from __future__ import annotations

import durio as restate

front = restate.Service("LocalFront")


@front.handler()
async def buy(ctx: restate.Context, item: str) -> str:
    result = await ctx.generic_call("SdkShop", "order", f'"{item}"'.encode())
    return f"local saw: {result.decode().strip(chr(34))}"


services = [front]
