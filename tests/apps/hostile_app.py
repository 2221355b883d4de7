"""A small app with one service of each kind and typed inputs, for the hostile-input tests.

Every handler finishes at once (no sleeps, no calls), so that a valid call
answers quickly and the only invocations in storage are the ones the test
made through the ingress.
"""

from __future__ import annotations

import dataclasses
import typing

import durio as restate


@dataclasses.dataclass
class Person:
    name: str
    age: int
    tags: list[str] = dataclasses.field(default_factory=list)


def given(value: typing.Any) -> typing.Any:
    """An empty body reaches a handler as None (as the official SDK hands it over): refused here at once,
    so that it fails terminally instead of raising a TypeError that would be retried."""
    if value is None:
        raise restate.TerminalError("this handler needs an input", 400)
    return value


echo = restate.Service("Echo")


@echo.handler()
async def greet(ctx: restate.Context, person: Person) -> str:
    person = given(person)
    return f"Hello {person.name} ({person.age}, {len(person.tags)} tags)"


@echo.handler()
async def double(ctx: restate.Context, n: int) -> int:
    return 2 * given(n)


@echo.handler()
async def upper(ctx: restate.Context, text: str) -> str:
    return given(text).upper()


@echo.handler()
async def nothing(ctx: restate.Context) -> None:
    return None


@echo.handler()
async def refuse(ctx: restate.Context, code: int) -> str:
    """A terminal error whose code is chosen by the caller (clamped to a 4xx)."""
    raise restate.TerminalError(f"refused with {code}", 400 + abs(given(code)) % 100)


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: restate.ObjectContext, n: int) -> int:
    total = (await ctx.get("total", type_hint=int) or 0) + given(n)
    ctx.set("total", total)
    return total


@counter.handler()
async def rename(ctx: restate.ObjectContext, person: Person) -> str:
    ctx.set("owner", given(person).name)
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
    return f"signed up {given(person).name}"


@signup.handler()
async def status(ctx: restate.WorkflowSharedContext) -> str:
    return await ctx.get("stage", type_hint=str) or "none"


services = [echo, counter, signup]
