"""A service file as the official SDK's docs write one: `import restate`, and only `app = restate.app([...])`.

`durio serve` runs it unchanged (it makes `restate` durio while loading the file). Nothing here names durio.
"""

from datetime import timedelta

import restate
from restate.exceptions import TerminalError

greeter = restate.Service("SdkGreeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    if not name:
        raise TerminalError("who?", status_code=422)
    stamp = await ctx.run_typed("stamp", lambda: "stamped", restate.RunOptions(max_attempts=3))
    return f"Hello {name} ({stamp})"


counter = restate.VirtualObject("SdkCounter", inactivity_timeout=timedelta(minutes=1))


@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    value = (await ctx.get("value", type_hint=int) or 0) + delta
    ctx.set("value", value)
    return value


@counter.handler(kind="shared")
async def current(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get("value", type_hint=int) or 0


app = restate.app([greeter, counter])
