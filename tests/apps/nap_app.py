"""Naps of a given length, for the disk-full tests run as a real server process."""

from __future__ import annotations

from datetime import timedelta

import durio as restate

naps = restate.Service("Nap")


@naps.handler()
async def nap(ctx: restate.Context, seconds: float) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    return "woke"


services = [naps]
