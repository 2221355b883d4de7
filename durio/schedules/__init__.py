"""Schedules: cron expressions and intervals that invoke a handler at each tick, exactly once per tick.

  specs.py      what a schedule is (timing, target, policies) and when its ticks fall (pure)
  requests.py   a schedule from the admin API's JSON, or a 400 naming the field and why
  declare.py    `@durio.scheduled(...)`: schedules declared next to their handler
  state.py      the stored record: spec, cursor, what runs, what was fired and skipped
  transitions.py  the durable steps (fire the due ticks, pause, trigger, backfill...) as writer ops
  scheduler.py  the live side: timers in, commits out, watches for buffered ticks
  views.py      the JSON the admin API answers

A schedule's next tick is a durable timer (TimerKind.SCHEDULE) of the timer actor. When it fires,
one transaction creates the tick's invocation, advances the schedule's cursor past the tick and
stores the next timer; a crash before the commit leaves the timer to fire again, a crash after it
leaves nothing to redo. The tick's invocation id is derived from (schedule id, tick time), as an
idempotent request's is, so even a second attempt at the same tick (a backfill over it) meets the
first invocation instead of making another.
"""
