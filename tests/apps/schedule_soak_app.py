"""A schedule every 2 seconds, for the kill -9 soak of schedules (scripts/schedule_soak.py).

Each attempt of the handler appends `invocation-id tick wall-ms` to $BEAT_LOG, so the soak can check
which ticks ran, under which invocation id, and never before their time.
"""

import os
import time

import durio as restate

beat = restate.Service("Beat")


@beat.handler()
@restate.scheduled(every="2s", id="beat", overlap="allow_all", catchup_window="1m")
async def tick(ctx: restate.Context, scheduled_at: str) -> str:
    with open(os.environ["BEAT_LOG"], "a") as log:
        log.write(f"{ctx.request().id} {scheduled_at} {int(time.time() * 1000)}\n")
    return scheduled_at


services = [beat]
