"""Handlers written for asyncio, as the official SDK's users write them: for `durio serve --backend asyncio`.

They use `asyncio.sleep`, `asyncio.gather` and `asyncio.wait_for` over durable futures, `asyncio.TaskGroup`,
contextvars, and aiohttp (an asyncio-only library) inside `run` steps, against a ledger the test runs
(LEDGER_URL): every effect the ledger records is counted, so a test can tell a step that ran twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from datetime import timedelta

import aiohttp

import durio

LEDGER_URL = os.environ.get("LEDGER_URL", "")

shop = durio.Service("AsyncioShop")
plain = durio.Service("PlainTrioSafe")

request_tag: contextvars.ContextVar[str] = contextvars.ContextVar("request_tag", default="unset")


async def post(path: str, payload: dict[str, str]) -> str:
    """One effect on the ledger, through aiohttp; the ledger answers with its count of that effect."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{LEDGER_URL}{path}", json=payload) as response:
            response.raise_for_status()
            return await response.text()


async def charge(order: str) -> str:
    return await post("/effect", {"name": f"charge {order}"})


async def reserve(order: str, item: str) -> str:
    await asyncio.sleep(0.01)  # an asyncio pause inside the step as well
    await post("/effect", {"name": f"reserve {order} {item}"})
    return item.upper()


async def wait_for_gate(order: str) -> str:
    """Poll the ledger until the test opens this order's gate (the server is killed while this waits)."""
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{LEDGER_URL}/gate/{order}") as response:
                if await response.text() == "open":
                    return "through"
            await asyncio.sleep(0.05)


async def slow_step() -> str:
    await asyncio.sleep(30)
    return "too late"


@shop.handler()
async def checkout(ctx: durio.Context, request: dict[str, str]) -> dict[str, object]:
    order = request["order"]
    request_tag.set(order)
    charged = await ctx.run_typed("charge", charge, durio.RunOptions(), order)
    await asyncio.sleep(0.01)
    # Two steps awaited together: the journal holds them in the order they were made (a, then b).
    reserved = await asyncio.gather(
        ctx.run_typed("reserve a", reserve, durio.RunOptions(), order, "a"),
        ctx.run_typed("reserve b", reserve, durio.RunOptions(), order, "b"),
    )
    gate = await asyncio.wait_for(ctx.run_typed("gate", wait_for_gate, durio.RunOptions(), order), timeout=120)
    return {"charged": charged, "reserved": list(reserved), "gate": gate, "tag": request_tag.get()}


@shop.handler()
async def nap(ctx: durio.Context, ms: int) -> str:
    await asyncio.sleep(ms / 1000)
    return f"slept {ms} ms"


@shop.handler()
async def gathered(ctx: durio.Context, names: list[str]) -> list[str]:
    """asyncio.gather straight over durable futures."""
    return list(await asyncio.gather(*(ctx.run_typed(f"echo {name}", lambda name=name: name) for name in names)))


@shop.handler()
async def race(ctx: durio.Context) -> str:
    """asyncio.wait_for around a step that takes too long: the handler sees TimeoutError."""
    try:
        return await asyncio.wait_for(ctx.run_typed("slow", slow_step), timeout=0.2)
    except TimeoutError:
        return "timed out"


@shop.handler()
async def grouped(ctx: durio.Context, names: list[str]) -> list[str]:
    """asyncio.TaskGroup over durable futures (each awaited in a task of the group)."""

    async def upper(name: str) -> str:
        return await ctx.run_typed(f"upper {name}", lambda: name.upper())

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(upper(name)) for name in names]
    return [task.result() for task in tasks]


@shop.handler()
async def first_of(ctx: durio.Context) -> list[str]:
    """asyncio.wait(FIRST_COMPLETED) over a quick step and a durable timer."""
    quick = asyncio.ensure_future(ctx.run_typed("quick", lambda: "quick"))
    timer = asyncio.ensure_future(ctx.sleep(timedelta(seconds=30)))
    done, pending = await asyncio.wait({quick, timer}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return sorted("quick" if task is quick else "timer" for task in done)


@plain.handler()
async def hello(ctx: durio.Context, name: str) -> str:
    """No asyncio: runs on every backend (the server stays useful while the other handlers fail on Trio)."""
    return await ctx.run_typed("greet", lambda: f"hello {name}")


services = [shop, plain]
app = durio.app(services)  # the same handlers as a deployment: `hypercorn tests.apps.asyncio_app:app`
