"""A schedule from the admin API's JSON (or a declaration in code), checked field by field.

Every problem is a SpecError naming the field and saying why, so the admin API answers 400 with
it and creates nothing. The target is checked against the services durio serves now: a schedule
that could never fire is refused when it is made, not discovered at its first tick.
"""

from __future__ import annotations

import datetime
import json
import re
import typing
from dataclasses import dataclass

from durio.kinds import HandlerKind
from durio.durations import BadDuration, parse_duration_ms
from durio.journal.entries import Target
from durio.schedules.specs import (
    DEFAULT_CATCHUP_WINDOW_MS,
    DEFAULT_OVERLAP,
    MIN_CATCHUP_WINDOW_MS,
    MIN_EVERY_MS,
    OVERLAP_POLICIES,
    ScheduleSpec,
    SpecError,
    TargetKind,
    check_cron,
    zone_named,
)
from durio.limits import key_problem

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
FIELDS = (
    "id",
    "cron",
    "every",
    "timezone",
    "target",
    "input",
    "overlap",
    "catchup_window",
    "jitter",
    "paused",
    "start_at",
    "end_at",
    "force",
)


class Services(typing.Protocol):
    """What a schedule's target is checked against (durio.actors.registry.Registry)."""

    def service(self, name: str) -> typing.Any: ...


@dataclass(frozen=True, slots=True)
class CreateRequest:
    spec: ScheduleSpec
    paused: bool
    force: bool  # replace a schedule of the same id with a different spec


def check_id(value: typing.Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise SpecError(
            "id", f"{value!r} is not a schedule id: 1 to 128 letters, digits and . _ : @ -, starting with a letter or digit"
        )
    return value


def parse_create(body: typing.Any, services: Services) -> CreateRequest:
    """The admin API's POST /schedules body; SpecError for the first field that is wrong."""
    if not isinstance(body, dict):
        raise SpecError(
            "body", 'must be a JSON object such as {"id": "nightly", "cron": "0 3 * * *", "target": "Service/handler"}'
        )
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise SpecError(unknown[0], f"is not a schedule field (the fields are {', '.join(FIELDS)})")
    schedule_id = check_id(body.get("id"))
    timezone = body.get("timezone", "UTC")
    zone_named(timezone)
    cron, every_ms = _timing(body.get("cron"), body.get("every"))
    target, kind = parse_target(body.get("target"), services)
    input_body = None
    if "input" in body:
        input_body = json.dumps(body["input"], separators=(",", ":")).encode()
    overlap = body.get("overlap", DEFAULT_OVERLAP)
    if overlap not in OVERLAP_POLICIES:
        raise SpecError("overlap", f"{overlap!r} is not an overlap policy: one of {', '.join(OVERLAP_POLICIES)}")
    catchup_window_ms = typing.cast(int, duration_field("catchup_window", body.get("catchup_window"), DEFAULT_CATCHUP_WINDOW_MS))
    if catchup_window_ms < MIN_CATCHUP_WINDOW_MS:
        raise SpecError("catchup_window", f"{body.get('catchup_window')!r} is shorter than the shortest window, 1s")
    jitter_ms = typing.cast(int, duration_field("jitter", body.get("jitter"), 0))
    if jitter_ms >= catchup_window_ms:
        raise SpecError(
            "jitter", f"{body.get('jitter')!r} is not shorter than the catch-up window: every tick would be skipped as late"
        )
    start_at_ms = instant_field("start_at", body.get("start_at"), timezone)
    end_at_ms = instant_field("end_at", body.get("end_at"), timezone)
    if start_at_ms is not None and end_at_ms is not None and end_at_ms <= start_at_ms:
        raise SpecError("end_at", "must be after start_at")
    paused = body.get("paused", False)
    if not isinstance(paused, bool):
        raise SpecError("paused", "must be true or false")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise SpecError("force", "must be true or false")
    spec = ScheduleSpec(
        id=schedule_id,
        target=target,
        target_kind=kind,
        cron=cron,
        every_ms=every_ms,
        timezone=timezone,
        input=input_body,
        overlap=overlap,
        catchup_window_ms=catchup_window_ms,
        jitter_ms=jitter_ms,
        start_at_ms=start_at_ms,
        end_at_ms=end_at_ms,
    )
    if spec.first_tick_after(start_at_ms or 0) is None:
        raise SpecError("end_at", "leaves the schedule no tick at all")
    return CreateRequest(spec, paused, force)


def _timing(cron: typing.Any, every: typing.Any) -> tuple[str | None, int | None]:
    if (cron is None) == (every is None):
        raise SpecError(
            "cron",
            "give either 'cron' (an expression such as '*/5 * * * *') or 'every' (a duration such as '2s'), not both or neither",
        )
    if cron is not None:
        return check_cron(cron), None
    every_ms = duration_field("every", every, None)
    assert every_ms is not None
    if every_ms < MIN_EVERY_MS:
        raise SpecError("every", f"{every!r} is shorter than the shortest interval, 1s")
    return None, every_ms


def parse_target(value: typing.Any, services: Services) -> tuple[Target, TargetKind]:
    """'Service/handler', 'Object/key/handler' or 'Workflow/handler', checked against the services served now."""
    if not isinstance(value, str) or value.count("/") not in (1, 2) or any(not part for part in value.split("/")):
        raise SpecError("target", f"{value!r} is not a target: 'Service/handler', 'Object/key/handler' or 'Workflow/handler'")
    parts = value.split("/")
    service_name, handler_name = parts[0], parts[-1]
    key = parts[1] if len(parts) == 3 else None
    service = services.service(service_name)
    if service is None:
        raise SpecError("target", f"there is no service '{service_name}'")
    handler = service.handlers.get(handler_name)
    if handler is None:
        raise SpecError(
            "target", f"'{service_name}' has no handler '{handler_name}' (it has {', '.join(sorted(service.handlers))})"
        )
    kind: TargetKind = handler.service_kind
    if kind == "service" and key is not None:
        raise SpecError("target", f"'{service_name}' is a service, which has no keys: write '{service_name}/{handler_name}'")
    if kind == "object":
        if key is None:
            raise SpecError(
                "target", f"'{service_name}' is a virtual object: name the key it runs on, '{service_name}/KEY/{handler_name}'"
            )
        problem = key_problem(key)
        if problem is not None:
            raise SpecError("target", f"the key cannot be used: {problem}")
    if kind == "workflow":
        if key is not None:
            raise SpecError(
                "target", f"a workflow target is '{service_name}/{handler_name}': each tick starts a run with a key of its own"
            )
        if handler.kind != HandlerKind.WORKFLOW:
            raise SpecError(
                "target",
                f"'{handler_name}' is a shared handler of workflow '{service_name}'; a schedule starts the workflow's run handler",
            )
    return Target(service_name, handler_name, key), kind


def duration_field(field: str, value: typing.Any, default: int | None) -> int | None:
    """A duration: '10s', '1h 30m', 'PT10S', a number of milliseconds, or a timedelta (from code)."""
    if value is None:
        return default
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpecError(
            field, f"{value!r} is not a duration: use forms like 10s, 500ms, 1h30m, PT10S, or a number of milliseconds"
        )
    if isinstance(value, int):
        if value < 0:
            raise SpecError(field, "must not be negative")
        return value
    try:
        return parse_duration_ms(value)
    except BadDuration as exc:
        raise SpecError(field, str(exc)) from None


def instant_field(field: str, value: typing.Any, timezone: str) -> int | None:
    """An RFC 3339 time ('2026-03-29T03:00:00+02:00'); one without an offset is in the schedule's time zone."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise SpecError(field, f"{value!r} is not an RFC 3339 time such as 2026-03-29T03:00:00+02:00") from None
    else:
        raise SpecError(field, f"{value!r} is not an RFC 3339 time such as 2026-03-29T03:00:00+02:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone_named(timezone))
    return int(moment.timestamp() * 1000)


def parse_backfill(body: typing.Any, timezone: str, now_ms: int) -> tuple[int, int, str]:
    """POST /schedules/{id}/backfill: (from_ms, to_ms, overlap policy); `to` may not be in the future."""
    if not isinstance(body, dict):
        raise SpecError("body", 'must be a JSON object: {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}')
    unknown = sorted(set(body) - {"from", "to", "overlap"})
    if unknown:
        raise SpecError(unknown[0], "is not a backfill field (they are from, to, overlap)")
    if body.get("from") is None:
        raise SpecError("from", "is required: the first tick time to fire")
    if body.get("to") is None:
        raise SpecError("to", "is required: the last tick time to fire")
    from_ms = typing.cast(int, instant_field("from", body["from"], timezone))
    to_ms = typing.cast(int, instant_field("to", body["to"], timezone))
    if to_ms < from_ms:
        raise SpecError("to", "is before 'from'")
    if to_ms > now_ms:
        raise SpecError("to", "is in the future: a backfill fires ticks that have passed (the schedule fires the rest)")
    overlap = body.get("overlap", "allow_all")
    if overlap not in OVERLAP_POLICIES:
        raise SpecError("overlap", f"{overlap!r} is not an overlap policy: one of {', '.join(OVERLAP_POLICIES)}")
    return from_ms, to_ms, overlap
