"""Named signals (ctx.signal / resolve_signal / reject_signal): embedded, and as a remote deployment.

Run as a script it serves these services as a deployment on SIGNALS_APP_BIND (hypercorn, Trio worker).
"""

from __future__ import annotations

import os
from datetime import timedelta

import durio

waiter = durio.Service("SignalWaiter")


@waiter.handler()
async def wait_for_approval(ctx: durio.Context) -> str:
    before = await ctx.run_typed("before", lambda: "ran")
    try:
        decision = await ctx.signal("approval", type_hint=str)
    except durio.TerminalError as exc:
        return f"{before}, rejected ({exc.status_code}): {exc.message}"
    return f"{before}, approved: {decision}"


@waiter.handler()
async def wait_for_two(ctx: durio.Context) -> list:
    # Two names at once; either may arrive first, and before or after the handler asks.
    await ctx.sleep(timedelta(milliseconds=50))
    first = ctx.signal("first", type_hint=int)
    second = ctx.signal("second", type_hint=int)
    return [await second, await first]


sender = durio.Service("SignalSender")


@sender.handler()
async def approve(ctx: durio.Context, request: dict) -> None:
    ctx.resolve_signal(request["invocation_id"], request.get("name", "approval"), request["value"])


@sender.handler()
async def reject(ctx: durio.Context, request: dict) -> None:
    ctx.reject_signal(request["invocation_id"], "approval", request["message"], 451)


SERVICES = [waiter, sender]


if __name__ == "__main__":
    import functools

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [os.environ["SIGNALS_APP_BIND"]]
    config.accesslog = None
    trio.run(functools.partial(serve, durio.app(SERVICES), config))
