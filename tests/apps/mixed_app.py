"""In-process durio services mixed with a remote deployment (official_sdk_app): LocalFront calls SdkShop
(local -> remote); SdkShop.ask_local calls LocalBack, which calls the remote SdkCart (remote -> local -> remote)."""

from __future__ import annotations

import durio as restate

front = restate.Service("LocalFront")


@front.handler()
async def buy(ctx: restate.Context, item: str) -> str:
    result = await ctx.generic_call("SdkShop", "order", f'"{item}"'.encode())
    return f"local saw: {result.decode().strip(chr(34))}"


back = restate.Service("LocalBack")


@back.handler()
async def stamp(ctx: restate.Context, item: str) -> str:
    count = await ctx.generic_call("SdkCart", "add", f'"{item}"'.encode(), key="mixed")
    return f"local stamped {item}; cart has {count.decode()}"


services = [front, back]
