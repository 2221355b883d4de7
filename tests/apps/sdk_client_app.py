"""Services the ingress-client tests call: embedded in durio, and as a deployment of the official Restate server.

Run as a script it serves them as a remote deployment on CLIENT_APP_BIND (hypercorn, Trio worker).
"""

from __future__ import annotations

import os

import durio

greeter = durio.Service("ClientGreeter")
calls: dict[str, int] = {}
seen_headers: dict[str, str] = {}


@greeter.handler()
async def greet(ctx: durio.Context, name: str) -> str:
    calls[name] = calls.get(name, 0) + 1
    seen_headers.update({k.lower(): v for k, v in ctx.request().headers.items() if k.lower().startswith("x-test")})
    if name == "nobody":
        raise durio.TerminalError("no such person", status_code=404)
    return f"Hello {name}"


@greeter.handler()
async def shout(ctx: durio.Context) -> str:
    return "HEY"


@greeter.handler(
    accept="application/octet-stream",
    content_type="application/octet-stream",
    input_serde=durio.BytesSerde(),
    output_serde=durio.BytesSerde(),
)
async def reverse(ctx: durio.Context, data: bytes) -> bytes:
    return data[::-1]


counter = durio.VirtualObject("ClientCounter")


@counter.handler()
async def add(ctx: durio.ObjectContext, delta: int) -> int:
    value = (await ctx.get("value", type_hint=int) or 0) + delta
    ctx.set("value", value)
    return value


@counter.handler(kind="shared")
async def current(ctx: durio.ObjectSharedContext) -> int:
    return await ctx.get("value", type_hint=int) or 0


signup = durio.Workflow("ClientSignup")


@signup.main()
async def run(ctx: durio.WorkflowContext, email: str) -> str:
    return await ctx.promise("confirmed", type_hint=str).value() + " " + email


@signup.handler()
async def confirm(ctx: durio.WorkflowSharedContext, word: str) -> None:
    await ctx.promise("confirmed", type_hint=str).resolve(word)


SERVICES = [greeter, counter, signup]
app = durio.app(SERVICES)


if __name__ == "__main__":
    import functools

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [os.environ["CLIENT_APP_BIND"]]
    config.accesslog = None
    trio.run(functools.partial(serve, app, config))
