"""A schedule as stored: its spec and where it stands.

The record and its timer change together, in the transaction that handles a tick, so after any
crash storage says exactly which ticks were handled: those at or before `cursor_ms`, each fired
(its invocation created in the same transaction), skipped (counted, with the reason) or buffered.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from durio import ids
from durio.schedules.specs import ScheduleSpec
from durio.storage.records import TimerKey, TimerKind

HISTORY_KEPT = 20  # the latest fires and the latest skips each keep this many entries
RUNNING_KEPT = 100  # allow_all may leave many running; past this, the oldest are forgotten (overlap needs one)


@dataclass(slots=True)
class ScheduleRecord:
    spec: ScheduleSpec
    created_ms: int
    updated_ms: int
    paused: bool = False
    # Every tick at or before the cursor has been handled. Starts at the creation time (ticks before a
    # schedule existed are not missed ticks; backfill fires them on request).
    cursor_ms: int = 0
    next_tick_ms: int | None = None  # the first tick after the cursor; None once the schedule has ended
    due_ms: int | None = None  # next tick plus its jitter: when the stored timer fires (None: no timer)
    running: list[str] = field(default_factory=list)  # fired invocations not yet seen completed
    buffered: dict[str, typing.Any] | None = None  # {"tick", "by"}: fires when `running` empties
    fired: int = 0
    skipped: int = 0
    last_fires: list[dict[str, typing.Any]] = field(default_factory=list)  # newest last: tick, by, invocation_id, fired_at
    last_skips: list[dict[str, typing.Any]] = field(default_factory=list)  # newest last: tick, until, count, reason, at

    @property
    def key(self) -> str:
        return schedule_key(self.spec.id)

    def timer(self) -> TimerKey | None:
        return None if self.due_ms is None else TimerKey(self.due_ms, self.key, TimerKind.SCHEDULE)

    def note_fire(self, entry: dict[str, typing.Any]) -> None:
        self.fired += 1
        self.last_fires.append(entry)
        del self.last_fires[:-HISTORY_KEPT]

    def note_skip(
        self, tick_ms: int, count: int, reason: str, now_ms: int, until_ms: int | None = None, after_tick: int | None = None
    ) -> None:
        """Count skipped ticks. When the latest entry ends at `after_tick` (the spec's tick just before these) for
        the same reason, they extend it: a slow run's many overlapping ticks make one entry, not twenty."""
        self.skipped += count
        latest = self.last_skips[-1] if self.last_skips else None
        if (
            after_tick is not None
            and latest is not None
            and latest["reason"] == reason
            and latest.get("until", latest["tick"]) == after_tick
        ):
            latest["count"] += count
            latest["until"] = until_ms if until_ms is not None else tick_ms
            latest["at"] = now_ms
            return
        entry: dict[str, typing.Any] = {"tick": tick_ms, "count": count, "reason": reason, "at": now_ms}
        if until_ms is not None and until_ms != tick_ms:
            entry["until"] = until_ms
        self.last_skips.append(entry)
        del self.last_skips[:-HISTORY_KEPT]

    def note_running(self, invocation_id: str) -> None:
        self.running.append(invocation_id)
        del self.running[:-RUNNING_KEPT]

    def to_stored(self) -> dict[str, typing.Any]:
        return {
            "spec": self.spec.to_stored(),
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "paused": self.paused,
            "cursor_ms": self.cursor_ms,
            "next_tick_ms": self.next_tick_ms,
            "due_ms": self.due_ms,
            "running": self.running,
            "buffered": self.buffered,
            "fired": self.fired,
            "skipped": self.skipped,
            "last_fires": self.last_fires,
            "last_skips": self.last_skips,
        }

    @classmethod
    def from_stored(cls, fields: dict[str, typing.Any]) -> "ScheduleRecord":
        known = {name: value for name, value in fields.items() if name in cls.__dataclass_fields__}
        known["spec"] = ScheduleSpec.from_stored(known["spec"])
        return cls(**known)


def schedule_key(schedule_id: str) -> str:
    """The 24-byte id that stands for a schedule in storage keys and timers.

    Derived from the schedule id as invocation ids are derived, so its first 8 bytes are the
    partition key of the schedule id: a schedule belongs to that partition (its timer, its record,
    the transaction that fires it), as a keyed invocation belongs to its key's."""
    return ids.derived_id(["schedule", schedule_id], schedule_id)
