"""The resume limit: timers and recovery bring stored invocations back a bounded number at a time.

A wave of due timers, or a restart with many invocations in flight, must not put them all in memory
at once; every one of them still completes.
"""

from __future__ import annotations

from datetime import timedelta

import anyio

import durio as restate
from durio.actors.runtime import RuntimeConfig, open_runtime

from tests.conftest import invoke, wait_until

LIMIT = 12

napper = restate.Service("Napper")
gate = restate.Service("Gate")
gate_open = anyio.Event()
entered: list[str] = []


@napper.handler()
async def nap(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(milliseconds=300))
    return "rested"


@gate.handler()
async def wait(ctx: restate.Context) -> str:
    async def pass_the_gate() -> str:
        entered.append(ctx.request().id)
        await gate_open.wait()
        return "through"

    return await ctx.run_typed("pass", pass_the_gate)


async def watch_actors(runtime, most: list[int], done: anyio.Event) -> None:
    """Record the most actors alive at once, looking at every turn of the scheduler."""
    while not done.is_set():
        most[0] = max(most[0], len(runtime.router.actors))
        await anyio.sleep(0)


async def outputs(runtime, ids: list[str]) -> list:
    records = await runtime.store.read(lambda txn: [txn.get_invocation(i) for i in ids])
    return [r.result if r is not None and r.is_completed else None for r in records]


async def test_a_wave_of_due_timers_is_resumed_a_bounded_number_at_a_time(tmp_path) -> None:
    config = RuntimeConfig(suspend_after_s=0.0, resume_limit=LIMIT, purge_completed=False)
    async with open_runtime([napper], tmp_path / "data", config) as runtime:
        ids = [await invoke(runtime, "Napper", "nap", send=True) for _ in range(150)]

        async def all_asleep() -> bool:
            return not runtime.router.actors

        await wait_until(all_asleep)
        most, done = [0], anyio.Event()
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(watch_actors, runtime, most, done)

            async def all_rested() -> bool:
                return all(result == b'"rested"' for result in await outputs(runtime, ids))

            await wait_until(all_rested, timeout=60)
            done.set()
    assert LIMIT // 2 <= most[0] <= LIMIT, f"{most[0]} actors were alive at once; the limit is {LIMIT}"


async def test_recovery_resumes_a_bounded_number_at_a_time_and_the_rest_as_room_frees(tmp_path) -> None:
    global gate_open
    gate_open = anyio.Event()
    entered.clear()
    async with open_runtime([gate], tmp_path / "data", RuntimeConfig(purge_completed=False)) as runtime:
        ids = [await invoke(runtime, "Gate", "wait", send=True) for _ in range(60)]

        async def all_at_the_gate() -> bool:
            return len(set(entered)) == 60

        await wait_until(all_at_the_gate)
        # Leaving the block stops every actor mid-step, as a crash would: 60 invocations stay ready.

    entered.clear()
    config = RuntimeConfig(resume_limit=LIMIT, purge_completed=False)
    async with open_runtime([gate], tmp_path / "data", config) as runtime:
        assert runtime.recovered == 60

        async def the_first_are_at_the_gate() -> bool:
            return len(entered) == LIMIT

        await wait_until(the_first_are_at_the_gate)
        await anyio.sleep(0.2)
        assert len(entered) == LIMIT and len(runtime.router.actors) == LIMIT, "more started than the limit"
        most, done = [0], anyio.Event()
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(watch_actors, runtime, most, done)
            gate_open.set()

            async def all_through() -> bool:
                return all(result == b'"through"' for result in await outputs(runtime, ids))

            await wait_until(all_through, timeout=60)
            done.set()
        assert sorted(set(entered)) == sorted(ids)
        assert most[0] <= LIMIT
