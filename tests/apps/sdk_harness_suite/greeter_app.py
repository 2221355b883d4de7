"""An app as written for the official SDK: `import restate`, nothing durio."""

import restate
from restate.exceptions import TerminalError

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    if name == "":
        raise TerminalError("a name, please", 400)
    return await ctx.run_typed("compose", lambda: f"Hello {name}", restate.RunOptions(max_attempts=3))


counter = restate.VirtualObject("Counter")


@counter.handler()
async def increment(ctx: restate.ObjectContext, delta: int) -> int:
    value = (await ctx.get("count", type_hint=int) or 0) + delta
    ctx.set("count", value)
    return value


@counter.handler(kind="shared")
async def count(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get("count", type_hint=int) or 0


flaky = restate.Service("Flaky")
attempts: list[int] = []


@flaky.handler()
async def fail(ctx: restate.Context) -> str:
    attempts.append(1)
    raise ValueError("always")


app = restate.app([greeter, counter, flaky])
