"""A service with three `run` steps that records every execution of a step in a file.

The file (env STEPS_LOG) is appended with O_APPEND, one line per execution,
so a test can count how many times each step of each invocation really ran.
"""

from __future__ import annotations

import os

import anyio

import durio as restate

steps = restate.Service("Steps")


def record_execution(invocation_id: str, step: str) -> None:
    fd = os.open(os.environ["STEPS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{invocation_id} {step}\n".encode())
    finally:
        os.close(fd)


@steps.handler()
async def run(ctx: restate.Context, delay_ms: int) -> list[str]:
    invocation_id = ctx.request().id
    results = []
    for step in ("pay", "add-Hulu", "add-Prime"):

        async def perform(step: str = step) -> str:
            await anyio.sleep(delay_ms / 1000)
            record_execution(invocation_id, step)
            return f"{step}-done"

        results.append(await ctx.run_typed(step, perform))
    return results


services = [steps]
