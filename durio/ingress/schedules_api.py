"""The admin API's /schedules routes (mounted by admin_app):

  GET    /schedules                       every schedule, by id, with its next and latest fire
  POST   /schedules                       create: {"id", "cron"|"every", "target", ...}; 201, or 200 when the
                                          same spec exists; 409 when a different one does (unless "force": true)
  GET    /schedules/{id}                  next fires, latest fires with their invocations and outcomes, skips
  DELETE /schedules/{id}                  forget it (what it fired runs on)
  PATCH  /schedules/{id}/pause|resume     stop and restart its ticks (the ticks in between are skipped)
  PATCH  /schedules/{id}/trigger          fire a tick now, under its overlap policy
  POST   /schedules/{id}/backfill         fire its past ticks in {"from", "to"} that have not fired

Bad input is a 400 whose message starts with the field it is about, and changes nothing.
"""

from __future__ import annotations

import typing

from durio.asgi import HttpError, Receive, Scope, Send, drain, read_body, respond_json
from durio.schedules.requests import check_id, parse_backfill, parse_create
from durio.schedules.specs import SpecError
from durio.schedules.transitions import MAX_BACKFILL_TICKS, Outcome
from durio.schedules.views import schedule_json
from durio.sdk import serde
from durio.storage.records import InvocationRecord

if typing.TYPE_CHECKING:
    from durio.actors.runtime import Runtime

MAX_BODY = 1024 * 1024


async def serve_schedules(runtime: "Runtime", scope: Scope, receive: Receive, send: Send, rest: list[str]) -> None:
    """Answer a request whose path starts with /schedules; `rest` is what follows."""
    method = scope["method"]
    try:
        match rest:
            case []:
                if method == "POST":
                    await _create(runtime, scope, receive, send)
                    return
                _require(method, "GET")
                listed = await runtime.schedules.list()
                shown = await _status_shown(runtime)
                await respond_json(send, 200, {"schedules": [schedule_json(r, inv, shown, detailed=False) for r, inv in listed]})
            case [schedule_id]:
                check_id(schedule_id)
                if method == "DELETE":
                    await drain(receive)
                    await _delete(runtime, send, schedule_id)
                    return
                _require(method, "GET")
                await respond_json(send, 200, await _view(runtime, schedule_id))
            case [schedule_id, "pause" | "resume" | "trigger" as action]:
                _require(method, "PATCH")
                check_id(schedule_id)
                await drain(receive)
                outcome = _found(schedule_id, await runtime.schedules.control(schedule_id, action))
                view = await _view(runtime, schedule_id)
                if action == "trigger":
                    view = {**_fate(outcome)[0], "schedule": view}
                await respond_json(send, 200, view)
            case [schedule_id, "backfill"]:
                _require(method, "POST")
                check_id(schedule_id)
                await _backfill(runtime, scope, receive, send, schedule_id)
            case _:
                raise HttpError(404, f"not found: {scope['path']}")
    except SpecError as exc:
        raise HttpError(400, str(exc)) from None


async def _read_json(scope: Scope, receive: Receive) -> typing.Any:
    body = await read_body(scope, receive, MAX_BODY)
    try:
        return serde.loads(body)
    except serde.SerdeError as exc:
        raise HttpError(400, f"body: not JSON ({exc})") from None


async def _create(runtime: "Runtime", scope: Scope, receive: Receive, send: Send) -> None:
    request = parse_create(await _read_json(scope, receive), runtime.registry)
    outcome = await runtime.schedules.create(request.spec, request.paused, request.force)
    schedule_id = request.spec.id
    if outcome.status == "declared_in_code":
        raise HttpError(409, f"id: the schedule {schedule_id!r} is declared in code (@scheduled); change it there")
    if outcome.status == "conflict":
        raise HttpError(
            409, f'id: a different schedule {schedule_id!r} exists; DELETE it first, or send "force": true to replace it'
        )
    status = 201 if outcome.status == "created" else 200
    await respond_json(send, status, await _view(runtime, schedule_id), [(b"location", f"/schedules/{schedule_id}".encode())])


async def _delete(runtime: "Runtime", send: Send, schedule_id: str) -> None:
    outcome = _found(schedule_id, await runtime.schedules.delete(schedule_id))
    if outcome.status == "declared_in_code":
        raise HttpError(
            409,
            f"the schedule {schedule_id!r} is declared in code (@scheduled): remove it there, and it goes when "
            "durio next serves that code (pause it meanwhile)",
        )
    await respond_json(send, 200, {"id": schedule_id, "deleted": True})


async def _backfill(runtime: "Runtime", scope: Scope, receive: Receive, send: Send, schedule_id: str) -> None:
    body = await _read_json(scope, receive)
    found = await runtime.schedules.get(schedule_id)
    if found is None:
        raise HttpError(404, f"there is no schedule {schedule_id!r}")
    timezone = found[0].spec.timezone
    from_ms, to_ms, overlap = parse_backfill(body, timezone, runtime.clock.now_ms())
    outcome = _found(schedule_id, await runtime.schedules.backfill(schedule_id, from_ms, to_ms, overlap))
    if outcome.status == "too_many":
        raise HttpError(
            400, f"to: more than {MAX_BACKFILL_TICKS} ticks between 'from' and 'to'; backfill a shorter range at a time"
        )
    ticks = _fate(outcome)
    counts = {
        name: sum(1 for tick in ticks if tick["outcome"] == name) for name in ("fired", "already_fired", "skipped", "buffered")
    }
    await respond_json(send, 200, {"id": schedule_id, **counts, "ticks": ticks})


async def _view(runtime: "Runtime", schedule_id: str) -> dict[str, typing.Any]:
    found = await runtime.schedules.get(schedule_id)
    if found is None:
        raise HttpError(404, f"there is no schedule {schedule_id!r}")
    record, invocations = found
    return schedule_json(record, invocations, await _status_shown(runtime))


async def _status_shown(runtime: "Runtime") -> typing.Callable[[InvocationRecord], str]:
    """What each invocation shows, by what the actors of every worker are doing now."""
    live = await runtime.all_live_statuses()
    return lambda record: str(record.status) if record.is_completed else live.get(record.id, str(record.status))


def _fate(outcome: Outcome) -> list[dict[str, typing.Any]]:
    """What became of each tick a trigger or backfill handled, with tick times in the schedule's zone."""
    assert outcome.record is not None
    spec = outcome.record.spec
    return [{**tick, "tick": spec.local_time(tick["tick"])} for tick in outcome.ticks]


def _found(schedule_id: str, outcome: Outcome) -> Outcome:
    if outcome.status == "not_found":
        raise HttpError(404, f"there is no schedule {schedule_id!r}")
    return outcome


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"method not allowed: {method}; use {allowed}", [(b"allow", allowed.encode())])
