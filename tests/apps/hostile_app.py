"""A small app with one service of each kind and typed inputs, for the hostile-input tests.

Every handler finishes at once (no sleeps, no calls), so that a valid call
answers quickly and the only invocations in storage are the ones the test
made through the ingress.
"""

from __future__ import annotations

import dataclasses

import durio as restate


@dataclasses.dataclass
class Person:
    name: str
    age: int
    tags: list[str] = dataclasses.field(default_factory=list)


echo = restate.Service("Echo")


@echo.handler()
async def greet(ctx: restate.Context, person: Person) -> str:
    return f"Hello {person.name} ({person.age}, {len(person.tags)} tags)"


@echo.handler()
async def double(ctx: restate.Context, n: int) -> int:
    return 2 * n


@echo.handler()
async def upper(ctx: restate.Context, text: str) -> str:
    return text.upper()


@echo.handler()
async def nothing(ctx: restate.Context) -> None:
    return None


@echo.handler()
async def refuse(ctx: restate.Context, code: int) -> str:
    """A terminal error whose code is chosen by the caller (clamped to a 4xx)."""
    raise restate.TerminalError(f"refused with {code}", 400 + abs(code) % 100)


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: restate.ObjectContext, n: int) -> int:
    total = (await ctx.get("total", type_hint=int) or 0) + n
    ctx.set("total", total)
    return total


@counter.handler()
async def rename(ctx: restate.ObjectContext, person: Person) -> str:
    ctx.set("owner", person.name)
    return person.name


@counter.handler(kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get("total", type_hint=int) or 0


@counter.handler(kind="shared")
async def label(ctx: restate.ObjectSharedContext, text: str) -> str:
    return f"{ctx.key()}:{text}"


signup = restate.Workflow("Signup")


@signup.main()
async def run(ctx: restate.WorkflowContext, person: Person) -> str:
    ctx.set("stage", "done")
    return f"signed up {person.name}"


@signup.handler()
async def status(ctx: restate.WorkflowSharedContext) -> str:
    return await ctx.get("stage", type_hint=str) or "none"


services = [echo, counter, signup]
