"""`@durio.scheduled(...)`: a schedule declared next to the handler it runs (a durio extension of the SDK).

    @greeter.handler()
    @restate.scheduled("*/5 * * * *", timezone="Europe/Berlin")
    async def report(ctx: restate.Context, scheduled_at: str) -> None: ...

The decorator only notes the schedule on the function (in either order with `.handler()`, which
returns the same function); what it may check alone (the expression, the time zone, the
durations) it checks at once, so a typo fails at import. When durio serves the services, their
declared schedules are created, replaced when they changed, and deleted when they are gone from
the code (durio.schedules.scheduler). Services of remote deployments declare none: their code is
not in the server's process.
"""

from __future__ import annotations

import datetime
import json
import typing
from dataclasses import dataclass

from durio.kinds import HandlerKind
from durio.journal.entries import Target
from durio.schedules.requests import check_id, duration_field, instant_field
from durio.schedules.specs import (
    DEFAULT_CATCHUP_WINDOW_MS,
    DEFAULT_OVERLAP,
    MIN_CATCHUP_WINDOW_MS,
    MIN_EVERY_MS,
    OVERLAP_POLICIES,
    ScheduleSpec,
    SpecError,
    check_cron,
    zone_named,
)
from durio.limits import key_problem

_SCHEDULES_ATTRIBUTE = "__durio_schedules__"
_NO_INPUT = object()


@dataclass(frozen=True, slots=True)
class Declaration:
    """A schedule as declared on a function, before it knows its service."""

    id: str | None
    key: str | None
    cron: str | None
    every_ms: int | None
    timezone: str
    input: bytes | None
    overlap: str
    catchup_window_ms: int
    jitter_ms: int
    start_at_ms: int | None
    end_at_ms: int | None


def scheduled(
    cron: str | None = None,
    *,
    every: datetime.timedelta | str | None = None,
    timezone: str = "UTC",
    key: str | None = None,
    id: str | None = None,
    input: typing.Any = _NO_INPUT,
    overlap: typing.Literal["skip", "buffer_one", "allow_all", "cancel_other"] = DEFAULT_OVERLAP,
    catchup_window: datetime.timedelta | str | None = None,
    jitter: datetime.timedelta | str | None = None,
    start_at: datetime.datetime | str | None = None,
    end_at: datetime.datetime | str | None = None,
) -> typing.Callable[[typing.Any], typing.Any]:
    """Run this handler at each tick of `cron` (or `every` interval), exactly once per tick.

    `key`: the fixed key of a virtual object's handler. `id`: the schedule's id (default
    `Service.handler`; give one to put two schedules on a handler). Without `input`, the handler's
    input is the tick's scheduled time, an RFC 3339 string in `timezone`. `overlap`, `catchup_window`
    (default 1h), `jitter`, `start_at` and `end_at` are the admin API's fields of the same names.
    A bad value raises ValueError now, naming the parameter.
    """
    try:
        declaration = _declaration(cron, every, timezone, key, id, input, overlap, catchup_window, jitter, start_at, end_at)
    except SpecError as exc:
        raise ValueError(f"@scheduled {exc.field}: {exc.message}") from None

    def note(fn: typing.Any) -> typing.Any:
        declarations = list(getattr(fn, _SCHEDULES_ATTRIBUTE, ()))
        declarations.append(declaration)
        setattr(fn, _SCHEDULES_ATTRIBUTE, declarations)
        return fn

    return note


def _declaration(
    cron: typing.Any,
    every: typing.Any,
    timezone: typing.Any,
    key: typing.Any,
    schedule_id: typing.Any,
    input: typing.Any,
    overlap: typing.Any,
    catchup_window: typing.Any,
    jitter: typing.Any,
    start_at: typing.Any,
    end_at: typing.Any,
) -> Declaration:
    if (cron is None) == (every is None):
        raise SpecError("cron", "give either a cron expression or every=, not both or neither")
    every_ms = None
    if cron is not None:
        check_cron(cron)
    else:
        every_ms = duration_field("every", every, None)
        if every_ms is None or every_ms < MIN_EVERY_MS:
            raise SpecError("every", f"{every!r} is shorter than the shortest interval, 1s")
    zone_named(timezone)
    if schedule_id is not None:
        check_id(schedule_id)
    if key is not None and (not isinstance(key, str) or key_problem(key) is not None):
        raise SpecError("key", f"{key!r} cannot be an object key")
    if overlap not in OVERLAP_POLICIES:
        raise SpecError("overlap", f"{overlap!r} is not an overlap policy: one of {', '.join(OVERLAP_POLICIES)}")
    window_ms = typing.cast(int, duration_field("catchup_window", catchup_window, DEFAULT_CATCHUP_WINDOW_MS))
    if window_ms < MIN_CATCHUP_WINDOW_MS:
        raise SpecError("catchup_window", "is shorter than the shortest window, 1s")
    jitter_ms = typing.cast(int, duration_field("jitter", jitter, 0))
    if jitter_ms >= window_ms:
        raise SpecError("jitter", "is not shorter than the catch-up window")
    try:
        body = None if input is _NO_INPUT else json.dumps(input, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise SpecError("input", f"is not JSON: {exc}") from None
    return Declaration(
        id=schedule_id,
        key=key,
        cron=cron,
        every_ms=every_ms,
        timezone=timezone,
        input=body,
        overlap=overlap,
        catchup_window_ms=window_ms,
        jitter_ms=jitter_ms,
        start_at_ms=instant_field("start_at", start_at, timezone),
        end_at_ms=instant_field("end_at", end_at, timezone),
    )


def declared_schedules(services: typing.Iterable[typing.Any]) -> list[ScheduleSpec]:
    """The schedules the in-process services declare; ValueError naming the handler for one that cannot be."""
    specs: dict[str, ScheduleSpec] = {}
    for service in services:
        if getattr(service, "deployment", None) is not None:
            continue  # a remote deployment's: its code is elsewhere
        for handler in service.handlers.values():
            for declaration in getattr(handler.fn, _SCHEDULES_ATTRIBUTE, ()):
                spec = _spec(service, handler, declaration)
                if spec.id in specs:
                    raise ValueError(f"two schedules declared in code have the id {spec.id!r}: give each @scheduled its own id=")
                specs[spec.id] = spec
    return list(specs.values())


def _spec(service: typing.Any, handler: typing.Any, declaration: Declaration) -> ScheduleSpec:
    where = f"@scheduled on {service.name}/{handler.name}"
    kind = handler.service_kind
    if kind == "object" and declaration.key is None:
        raise ValueError(f"{where}: {service.name} is a virtual object; name the key its schedule runs on (key=...)")
    if kind != "object" and declaration.key is not None:
        raise ValueError(f"{where}: key= is for virtual objects; a {kind} takes none")
    if kind == "workflow" and handler.kind != HandlerKind.WORKFLOW:
        raise ValueError(f"{where}: a schedule starts a workflow's run (its main handler), not a shared handler")
    schedule_id = declaration.id or f"{service.name}.{handler.name}"
    try:
        check_id(schedule_id)
    except SpecError:
        raise ValueError(f"{where}: {schedule_id!r} cannot be a schedule id; give one with id=") from None
    return ScheduleSpec(
        id=schedule_id,
        target=Target(service.name, handler.name, declaration.key),
        target_kind=kind,
        cron=declaration.cron,
        every_ms=declaration.every_ms,
        timezone=declaration.timezone,
        input=declaration.input,
        overlap=declaration.overlap,
        catchup_window_ms=declaration.catchup_window_ms,
        jitter_ms=declaration.jitter_ms,
        start_at_ms=declaration.start_at_ms,
        end_at_ms=declaration.end_at_ms,
        source="code",
    )
