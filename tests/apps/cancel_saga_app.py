"""A saga whose compensation calls a service that outlasts the caller's wait: the red-team's B1 case.

Embedded with `durio serve`, or as a remote deployment (`app`) served by hypercorn.
Each side effect appends a line to $CANCEL_EFFECTS_LOG.
"""

from __future__ import annotations

import os
from datetime import timedelta

import durio as restate


def effect(line: str) -> str:
    with open(os.environ.get("CANCEL_EFFECTS_LOG", os.devnull), "a") as log:
        log.write(line + "\n")
    return line


slow = restate.Service("SlowRefund")
saga = restate.Service("CancelSaga")


@slow.handler()
async def refund(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(seconds=2))  # longer than the caller waits before suspending
    return await ctx.run_typed("refund", effect, restate.RunOptions(), "refund")


@saga.handler()
async def book(ctx: restate.Context) -> str:
    await ctx.run_typed("reserve", effect, restate.RunOptions(), "reserve")
    try:
        await ctx.sleep(timedelta(seconds=60))
    except restate.TerminalError:
        await ctx.service_call(refund, arg=None)
        await ctx.run_typed("compensated", effect, restate.RunOptions(), "compensated")
        raise
    return "kept"


services = [slow, saga]
app = restate.app(services)
