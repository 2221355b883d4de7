"""How invocations and journals look as JSON, for the admin API, the CLI and the UI."""

from __future__ import annotations

import typing

from durio.ingress.ingress_app import rfc3339
from durio.journal import entries as e
from durio.sdk import serde
from durio.sdk.definitions import is_ingress_private
from durio.storage.records import InvocationRecord


def _timestamp(ms: int) -> str | None:
    return rfc3339(ms) if ms else None


def value_json(value: bytes | None) -> typing.Any:
    """A stored value as JSON when it is JSON durio reads (never NaN: a remote SDK may store it), else as text."""
    if value is None or value == b"":
        return None
    try:
        return serde.loads(value)
    except serde.SerdeError:
        return value.decode("utf-8", errors="replace")


def result_fields(result: e.Result) -> dict[str, typing.Any]:
    if isinstance(result, e.Failure):
        return {"failure": {"code": result.code, "message": result.message}}
    if isinstance(result, bytes):
        return {"value": value_json(result)}
    if isinstance(result, list):
        return {"value": result}
    if isinstance(result, str):
        return {"value": result}
    return {}


def target_string(record: InvocationRecord) -> str:
    return str(record.target)


def invocation_json(record: InvocationRecord, status: str) -> dict[str, typing.Any]:
    target = record.target
    view: dict[str, typing.Any] = {
        "id": record.id,
        "target": target_string(record),
        "target_service_name": target.service,
        "target_service_key": target.key,
        "target_handler_name": target.handler,
        "handler_kind": record.handler_kind,
        "status": status,
        "created_at": _timestamp(record.created_ms),
        "modified_at": _timestamp(record.modified_ms),
        "scheduled_at": _timestamp(record.execute_at_ms),
        "completed_at": _timestamp(record.completed_ms),
        "retry_count": record.retry_count,
        "last_failure": None,
        "idempotency_key": record.idempotency_key,
        "invoked_by": record.caller_id,
        "awaiting": list(record.awaiting),
        "completion_result": None,
    }
    if record.last_failure:
        failure = record.last_failure
        view["last_failure"] = {
            "message": failure.get("message"),
            "code": failure.get("code"),
            "at": _timestamp(failure.get("at_ms") or 0),
            "related_entry_index": failure.get("entry_index"),
            "related_entry_name": failure.get("entry_name"),
            "related_entry_type": failure.get("entry_type"),
        }
    if record.is_completed:
        if isinstance(record.result, e.Failure):
            view["completion_result"] = "failure"
            view["completion_failure"] = {"code": record.result.code, "message": record.result.message}
        else:
            view["completion_result"] = "success"
            view["output"] = value_json(typing.cast(bytes, record.result))
    return view


def journal_json(entries: list[e.Entry]) -> list[dict[str, typing.Any]]:
    """Entries as JSON, each command joined with the notification that completed it."""
    completions: dict[int, e.Completion] = {}
    signals: dict[int, e.Signal] = {}
    for entry in entries:
        if isinstance(entry, e.Completion):
            completions.setdefault(entry.completion_id, entry)
        elif isinstance(entry, e.Signal):
            signals.setdefault(entry.signal_index, entry)
    out = []
    for index, entry in enumerate(entries):
        item: dict[str, typing.Any] = {"index": index, "type": entry.type_name, "at": _timestamp(entry.ts)}
        name = getattr(entry, "name", "")
        if name:
            item["name"] = name
        if isinstance(entry, e.Input):
            item["value"] = value_json(entry.value)
        elif isinstance(entry, e.Output):
            item.update(result_fields(entry.result))
        elif isinstance(entry, (e.Call, e.OneWayCall)):
            item["target"] = str(entry.target)
            item["callee_id"] = entry.callee_id
            item["value"] = value_json(entry.value)
            if isinstance(entry, e.OneWayCall) and entry.invoke_at_ms:
                item["invoke_at"] = _timestamp(entry.invoke_at_ms)
        elif isinstance(entry, e.Sleep):
            item["wake_up_at"] = _timestamp(entry.wake_up_ms)
        elif isinstance(entry, (e.GetState, e.SetState, e.ClearState)):
            item["key"] = entry.key
            if isinstance(entry, (e.GetState, e.SetState)):
                item["value"] = value_json(entry.value)
        elif isinstance(entry, e.GetStateKeys):
            item["keys"] = entry.keys
        elif isinstance(entry, (e.GetPromise, e.PeekPromise, e.CompletePromise)):
            item["promise"] = entry.key
            if isinstance(entry, e.CompletePromise):
                item.update({"completion_" + k: v for k, v in result_fields(entry.result).items()})
        elif isinstance(entry, e.CompleteAwakeable):
            item["awakeable_id"] = entry.awakeable_id
            item.update(result_fields(entry.result))
        elif isinstance(entry, (e.SendSignal, e.SendNamedSignal, e.AttachInvocation, e.GetInvocationOutput)):
            item["target_invocation_id"] = entry.target_invocation_id
            if isinstance(entry, e.SendNamedSignal):
                item["signal_name"] = entry.signal_name
                item.update(result_fields(entry.result))
        elif isinstance(entry, e.Completion):
            item["completion_id"] = entry.completion_id
            item.update(result_fields(entry.result))
        elif isinstance(entry, e.Signal):
            item["signal_index"] = entry.signal_index
            item.update(result_fields(entry.result))
        elif isinstance(entry, e.NamedSignal):
            item["signal_name"] = entry.signal_name
            item.update(result_fields(entry.result))
        completion_id = getattr(entry, "completion_id", None)
        if entry.is_command and completion_id is not None:
            item["completion_id"] = completion_id
            done = completions.get(completion_id)
            if done is not None:
                item["completed_at"] = _timestamp(done.ts)
                item["duration_ms"] = max(0, done.ts - entry.ts)
                item.update(result_fields(done.result))
        out.append(item)
    return out


_SERVICE_TY = {"service": "Service", "object": "VirtualObject", "workflow": "Workflow"}
_HANDLER_TY = {"exclusive": "Exclusive", "shared": "Shared", "workflow": "Workflow"}


def _hint_name(hint: typing.Any) -> str:
    if hint is None:
        return "none"
    return getattr(hint, "__name__", None) or str(hint)


def service_json(service: typing.Any, deployment_id: str = "embedded") -> dict[str, typing.Any]:
    handlers = []
    for handler in service.handlers.values():
        item: dict[str, typing.Any] = {
            "name": handler.name,
            "input_description": f"JSON {_hint_name(handler.input_hint)}" if handler.takes_input else "none",
            "output_description": f"JSON {_hint_name(handler.output_hint)}",
            "public": not is_ingress_private(service, handler),
        }
        if handler.kind is not None:
            item["ty"] = _HANDLER_TY[handler.kind]
        if handler.description:
            item["documentation"] = handler.description
        handlers.append(item)
    view: dict[str, typing.Any] = {
        "name": service.name,
        "ty": _SERVICE_TY[service.kind],
        "handlers": handlers,
        "deployment_id": deployment_id,
        "revision": 1,
        "public": not getattr(service, "ingress_private", None),
    }
    if service.description:
        view["documentation"] = service.description
    return view
