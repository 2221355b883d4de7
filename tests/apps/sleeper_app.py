"""Durable sleeps of a requested length, for timer and crash tests."""

from __future__ import annotations

from datetime import timedelta

import durio as restate

sleeper = restate.Service("Sleeper")


@sleeper.handler()
async def nap(ctx: restate.Context, ms: int) -> str:
    await ctx.sleep(timedelta(milliseconds=ms))
    return f"slept {ms} ms"


services = [sleeper]
