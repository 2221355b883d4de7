"""The handlers whose journals are checked in as golden files (see generate.py and test_golden_journals.py).

Changing what these handlers do changes their journals: regenerate the golden
files only for a deliberate change of format or behaviour.
"""

from __future__ import annotations

from datetime import timedelta

import durio as restate

executions: list[str] = []

golden = restate.Service("Golden")


def step(name: str) -> str:
    executions.append(name)
    return f"{name}-done"


@golden.handler()
async def steps(ctx: restate.Context, user: str) -> list[str]:
    payment = str(ctx.uuid())
    results = [await ctx.run_typed("pay", step, restate.RunOptions(), f"pay-{payment[:4]}")]
    for item in ("Hulu", "Prime"):
        results.append(await ctx.run_typed(f"add-{item}", step, restate.RunOptions(), f"{user}-{item}"))
    return results


@golden.handler()
async def race(ctx: restate.Context) -> list:
    futures = [ctx.run_typed(f"r{n}", step, restate.RunOptions(), f"r{n}") for n in range(3)]
    await restate.gather(*futures)
    winner = await restate.select(fast=ctx.sleep(timedelta(milliseconds=1)), slow=ctx.sleep(timedelta(hours=1)))
    return [await f for f in futures] + winner


@golden.handler()
async def saga(ctx: restate.Context) -> str:
    try:
        await ctx.run_typed("book", step, restate.RunOptions(), "book")
        raise restate.TerminalError("sold out", 409)
    except restate.TerminalError as exc:
        await ctx.run_typed("undo", step, restate.RunOptions(), "undo")
        return f"compensated: {exc.message}"


@golden.handler()
async def signals(ctx: restate.Context) -> str:
    # Named signals (SendNamedSignal, NamedSignal): sent to itself, so the journal holds both sides.
    ctx.resolve_signal(ctx.request().id, "go", "ready")
    value = await ctx.signal("go", type_hint=str)
    return value + " " + await ctx.run_typed("after", step, restate.RunOptions(), "after")


services = [golden]
