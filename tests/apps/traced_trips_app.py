"""Trips, a saga across two services for the tracing tests: reserve a flight, book a hotel (a call to the
Hotels deployment), take a short durable nap, then pay, which fails for good: the compensations cancel the
hotel (another call) and undo the flight, in reverse order."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import durio as restate  # noqa: E402
from traced_hotels_app import book, cancel  # noqa: E402

trips = restate.Service("Trips")


def refuse_payment() -> str:
    raise restate.TerminalError("the card was declined", status_code=402)


@trips.handler()
async def plan(ctx: restate.Context, trip: str) -> dict:
    compensations = []
    try:
        compensations.append(lambda: ctx.run_typed("undo-flight", lambda: None))
        await ctx.run_typed("reserve-flight", lambda: f"flight for {trip}")
        compensations.append(lambda: ctx.service_call(cancel, arg=trip))
        booked = await ctx.service_call(book, arg=trip)
        await ctx.sleep(timedelta(milliseconds=20))
        await ctx.run_typed("pay", refuse_payment)
    except restate.TerminalError:
        for compensation in reversed(compensations):
            await compensation()
        raise
    return booked


services = [trips]
