"""The JSON of a schedule, as GET /schedules and GET /schedules/{id} answer it (README: "Schedules").

Tick times are RFC 3339 in the schedule's time zone, with the offset, so a daylight-saving change
shows; when something happened (`fired_at`, `at`, `created_at`) is UTC. A fire's invocation is
looked up as the same read saw it: its status, and how it ended.
"""

from __future__ import annotations

import datetime
import json
import typing

from durio.journal.entries import Failure
from durio.schedules.specs import format_duration_ms
from durio.schedules.state import ScheduleRecord
from durio.storage.records import InvocationRecord

NEXT_FIRES_SHOWN = 5


def utc(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def schedule_json(
    record: ScheduleRecord,
    invocations: dict[str, InvocationRecord | None],
    live_status: typing.Callable[[InvocationRecord], str],
    detailed: bool = True,
) -> dict[str, typing.Any]:
    spec = record.spec
    view: dict[str, typing.Any] = {
        "id": spec.id,
        "source": spec.source,
        "cron": spec.cron,
        "every": None if spec.every_ms is None else format_duration_ms(spec.every_ms),
        "timezone": spec.timezone,
        "target": spec.target_path,
        "input": None if spec.input is None else json.loads(spec.input),
        "overlap": spec.overlap,
        "catchup_window": format_duration_ms(spec.catchup_window_ms),
        "jitter": format_duration_ms(spec.jitter_ms),
        "start_at": None if spec.start_at_ms is None else spec.local_time(spec.start_at_ms),
        "end_at": None if spec.end_at_ms is None else spec.local_time(spec.end_at_ms),
        "paused": record.paused,
        "created_at": utc(record.created_ms),
        "updated_at": utc(record.updated_ms),
        "next_fire_at": None if record.due_ms is None else utc(record.due_ms),
        "fired": record.fired,
        "skipped": record.skipped,
    }
    fires = [_fire_json(record, fire, invocations, live_status) for fire in reversed(record.last_fires)]
    if not detailed:
        view["last_fire"] = fires[0] if fires else None
        return view
    next_fires = []
    if not record.paused and record.next_tick_ms is not None:
        next_fires = [record.next_tick_ms, *spec.ticks(record.next_tick_ms, 1 << 62, NEXT_FIRES_SHOWN - 1)]
    view["next_fires"] = [spec.local_time(tick) for tick in next_fires]
    # Pruned at the schedule's next step; until then, shown as the read found them.
    view["running"] = [i for i in record.running if (found := invocations.get(i)) is not None and not found.is_completed]
    view["buffered"] = (
        None if record.buffered is None else {"tick": spec.local_time(record.buffered["tick"]), "by": record.buffered["by"]}
    )
    view["last_fires"] = fires
    view["last_skips"] = [_skip_json(record, skip) for skip in reversed(record.last_skips)]
    return view


def _fire_json(
    record: ScheduleRecord,
    fire: dict[str, typing.Any],
    invocations: dict[str, InvocationRecord | None],
    live_status: typing.Callable[[InvocationRecord], str],
) -> dict[str, typing.Any]:
    view: dict[str, typing.Any] = {
        "tick": record.spec.local_time(fire["tick"]),
        "by": fire["by"],
        "invocation_id": fire["invocation_id"],
        "fired_at": utc(fire["fired_at"]),
    }
    invocation = invocations.get(fire["invocation_id"])
    if invocation is None:
        view["status"] = "purged"  # its retention ended (or it was purged by an operator)
        return view
    view["status"] = live_status(invocation)
    if invocation.is_completed:
        if isinstance(invocation.result, Failure):
            view["outcome"] = "failure"
            view["failure"] = {"code": invocation.result.code, "message": invocation.result.message}
        else:
            view["outcome"] = "success"
    return view


def _skip_json(record: ScheduleRecord, skip: dict[str, typing.Any]) -> dict[str, typing.Any]:
    view = {"tick": record.spec.local_time(skip["tick"]), "count": skip["count"], "reason": skip["reason"], "at": utc(skip["at"])}
    if "until" in skip:
        view["until"] = record.spec.local_time(skip["until"])
    return view
