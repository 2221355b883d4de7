"""Services for the bidirectional-stream tests, as `durio.app` behind a recorder of the invoke requests.

Each invoke request that reaches the endpoint is logged (path and HTTP version) to $BIDI_LOG, so a test
can count the requests one invocation took: one stream for the whole attempt, or one per suspension.
Steps that ran are logged to $BIDI_LOG.steps, to count them across a kill -9 of the endpoint.
"""

from __future__ import annotations

import os
from datetime import timedelta

import durio as restate

steps = restate.Service("Steps")
greeter = restate.Service("Greeter")


def _note_step(name: str) -> str:
    with open(os.environ["BIDI_LOG"] + ".steps", "a") as log:
        log.write(name + "\n")
    return name


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"hello {name}"


@steps.handler()
async def walk(ctx: restate.Context, name: str) -> list[str]:
    """A step, a timer, a call and another step: four waits on what the server sends back."""
    first = await ctx.run_typed("first", lambda: "one")
    await ctx.sleep(timedelta(milliseconds=300))
    greeting = await ctx.service_call(greet, arg=name)
    second = await ctx.run_typed("second", lambda: "two")
    return [first, greeting, second]


@steps.handler()
async def nap(ctx: restate.Context, seconds: float) -> str:
    """A step, a long timer (the endpoint is killed during it), a step."""
    await ctx.run_typed("before", lambda: _note_step("before"))
    await ctx.sleep(timedelta(seconds=seconds))
    await ctx.run_typed("after", lambda: _note_step("after"))
    return "rested"


@steps.handler()
async def wait_for_word(ctx: restate.Context) -> str:
    """Waits on an awakeable longer than the server's inactivity timeout: the server asks it to suspend."""
    awakeable_id, word = ctx.awakeable(type_hint=str)
    await ctx.run_typed("publish", lambda: _note_step(f"awakeable {awakeable_id}"))
    return await word


_endpoint = restate.app([steps, greeter])


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and "/invoke/" in scope["path"]:
        with open(os.environ["BIDI_LOG"], "a") as log:
            log.write(f"{scope['path']} HTTP/{scope['http_version']}\n")
    await _endpoint(scope, receive, send)
