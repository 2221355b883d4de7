"""The services `make bench-scale` (benchmarks/scale.py) drives: durio serve benchmarks/scale_app.py

  Noop.noop          no steps: the latency probe while the server carries a load
  Sleepy.sleep       one durable sleep of an hour: an invocation that only waits
  Steps.run          n ctx.run_typed steps, then (optionally) a durable sleep that
                     forces a suspension, so the same journal is replayed; the
                     result carries the timings of both phases (below)
  Recover.run        three steps around a durable sleep until an absolute time, so
                     thousands of invocations can be left waiting across a kill -9
                     and all become due at once after the restart
  Kv.set             one small state value on a virtual-object key; completed
                     invocations are purged at once (retention 1 ms), so what stays
                     in LMDB is the state
  KvKept.set         the same with durio's default retention (a completed invocation
                     and its journal are kept for a day)

Timings are taken with time.time() / perf_counter() inside the handler and are
not journaled, except the live phase's summary of Steps.run, which is recorded by
a run step so it survives the suspension and reaches the final result.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import durio as restate

# ------------------------------------------------------------------ latency probe

noop_service = restate.Service("Noop")


@noop_service.handler()
async def noop(ctx: restate.Context) -> str:
    return "ok"


# ------------------------------------------------------------------ sleepers

sleepy = restate.Service("Sleepy")


@sleepy.handler()
async def sleep(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(hours=1))
    return "ok"


# ------------------------------------------------------------------ a journal of n steps, then its replay

steps_service = restate.Service("Steps")


async def _step(i: int) -> int:
    return i


async def _keep(value: dict) -> dict:
    return value


def _summary(durations_us: list[int]) -> dict:
    """Per-step figures of one phase; `tenths` is the mean step time in each tenth of the journal, in order."""
    n = len(durations_us)
    ordered = sorted(durations_us)
    tenths = []
    for part in range(10):
        chunk = durations_us[part * n // 10 : (part + 1) * n // 10]
        tenths.append(round(statistics.fmean(chunk), 1) if chunk else None)
    return {
        "steps": n,
        "total_s": sum(durations_us) / 1e6,
        "mean_us": round(statistics.fmean(durations_us), 1),
        "p50_us": ordered[n // 2],
        "p99_us": ordered[min(n - 1, n * 99 // 100)],
        "max_us": ordered[-1],
        "tenths_mean_us": tenths,
    }


@steps_service.handler()
async def run(ctx: restate.Context, request: dict) -> dict:
    """request: {"n": steps, "sleep_ms": durable sleep after the steps (0: none)}.

    First attempt: n live steps, each journaled before the next starts; their
    timings are recorded by one more step, then the durable sleep suspends the
    invocation (durio suspends after 1 s of waiting). When the timer fires, a new
    attempt replays the whole journal: this attempt times each replayed step, and
    the replay as a whole from entering the handler to the sleep's return.
    """
    entered = time.time()
    n = int(request["n"])
    sleep_ms = int(request.get("sleep_ms", 0))
    durations_us = []
    clock = time.perf_counter
    for i in range(n):
        started = clock()
        await ctx.run_typed(f"s{i}", _step, restate.RunOptions(), i)
        durations_us.append(int((clock() - started) * 1e6))
    this_attempt = _summary(durations_us) if n else {}
    live = await ctx.run_typed(
        "live",
        _keep,
        restate.RunOptions(),
        {
            **this_attempt,
            "started_at": entered,
            "sleep_at": time.time(),
        },
    )
    if not sleep_ms:
        return {"live": live}
    await ctx.sleep(timedelta(milliseconds=sleep_ms))
    woken = time.time()
    # Only an attempt that replayed the steps gets here with `live` from the journal.
    return {"live": live, "replay": {**this_attempt, "entered_at": entered, "woken_at": woken}}


# ------------------------------------------------------------------ in flight across a kill -9

recover = restate.Service("Recover")


async def _delay_until(wake_at_ms: int) -> int:
    return max(0, wake_at_ms - int(time.time() * 1000))


@recover.handler(name="run")
async def recover_run(ctx: restate.Context, wake_at_ms: int) -> str:
    delay_ms = await ctx.run_typed("delay", _delay_until, restate.RunOptions(), wake_at_ms)
    await ctx.run_typed("before", _step, restate.RunOptions(), 1)
    await ctx.sleep(timedelta(milliseconds=delay_ms))
    await ctx.run_typed("after", _step, restate.RunOptions(), 2)
    return "ok"


# ------------------------------------------------------------------ one small state value per key

kv = restate.VirtualObject("Kv", journal_retention=timedelta(milliseconds=1))


@kv.handler(name="set")
async def kv_set(ctx: restate.ObjectContext, value: int) -> None:
    ctx.set("v", value)


kv_kept = restate.VirtualObject("KvKept")


@kv_kept.handler(name="set")
async def kv_kept_set(ctx: restate.ObjectContext, value: int) -> None:
    ctx.set("v", value)


services = [noop_service, sleepy, steps_service, recover, kv, kv_kept]
