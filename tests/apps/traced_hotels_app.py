"""Hotels, a remote deployment (`app`, served by hypercorn) for the tracing tests: its booking says which
traceparent its attempt's HTTP request carried."""

from __future__ import annotations

import durio as restate

hotels = restate.Service("Hotels")


@hotels.handler()
async def book(ctx: restate.Context, trip: str) -> dict:
    booking = await ctx.run_typed("book-hotel", lambda: f"hotel for {trip}")
    return {"booking": booking, "attempt_traceparent": ctx.request().attempt_headers.get("traceparent")}


@hotels.handler()
async def cancel(ctx: restate.Context, trip: str) -> None:
    await ctx.run_typed("cancel-hotel", lambda: None)


services = [hotels]
app = restate.app(services)
