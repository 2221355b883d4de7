"""Waiting on several durable futures at once, with the official SDK's names and results.

Which futures count as completed is decided by the journal (see
journal/machine.py), so a replay takes the same branch as the first run.
"""

from __future__ import annotations

import typing

from durio.sdk.futures import RestateDurableFuture, wait_for


async def gather(*futures: RestateDurableFuture[typing.Any]) -> list[RestateDurableFuture[typing.Any]]:
    """Wait until every future is completed; returns the futures (await each for its value)."""
    pending = [f for f in futures if not f.is_completed()]
    if pending:
        await wait_for(pending, need_all=True)
    return list(futures)


async def wait_completed(
    *args: RestateDurableFuture[typing.Any],
) -> tuple[list[RestateDurableFuture[typing.Any]], list[RestateDurableFuture[typing.Any]]]:
    """Wait until at least one future is completed; returns (completed, not completed)."""
    futures = args  # the SDK's parameter name is `args`
    if not futures:
        return [], []
    done = [f for f in futures if f.is_completed()]
    if done:
        return done, [f for f in futures if not f.is_completed()]
    await wait_for(futures, need_all=False)
    return [f for f in futures if f.is_completed()], [f for f in futures if not f.is_completed()]


async def as_completed(*futures: RestateDurableFuture[typing.Any]) -> typing.AsyncIterator[RestateDurableFuture[typing.Any]]:
    """Yield the futures in the order they complete."""
    remaining = list(futures)
    while remaining:
        done, remaining = await wait_completed(*remaining)
        for future in done:
            yield future


async def select(**kws: RestateDurableFuture[typing.Any]) -> list[typing.Any]:
    """Wait for the first future to complete; returns [its name, its value].

    A timeout: `match await select(result=f, timeout=ctx.sleep(timedelta(seconds=30)))`.
    """
    futures = kws  # the SDK's parameter name is `kws`
    if not futures:
        raise ValueError("select needs at least one future")
    names = {id(future): name for name, future in futures.items()}
    async for future in as_completed(*futures.values()):
        return [names[id(future)], await future]
    raise AssertionError("unreachable")
