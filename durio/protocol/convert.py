"""Journal entries to protocol frames and back: durio's journal speaks the protocol's vocabulary."""

from __future__ import annotations

import typing

from durio import ids
from durio.journal import entries as e
from durio.protocol import messages as m
from durio.protocol.framing import ProtocolError

M = m.MESSAGES


# ---------------------------------------------------------------- results


def _value(content: bytes) -> typing.Any:
    return M["Value"](content=content)


def failure_message(failure: e.Failure, version: int) -> typing.Any:
    """A Failure message; its metadata travels from V6 on."""
    message = M["Failure"](code=failure.code, message=failure.message)
    if failure.metadata and version >= 6:
        for key, value in failure.metadata.items():
            message.metadata.add(key=key, value=value)
    return message


def failure_of(message: typing.Any) -> e.Failure:
    metadata = {item.key: item.value for item in message.metadata} or None
    return e.Failure(message.code, message.message, metadata)


def _set_result(
    target: typing.Any,
    result: e.Result,
    version: int,
    *,
    value_field: str = "value",
    void_field: str = "void",
    failure_field: str = "failure",
) -> None:
    if isinstance(result, e.Failure):
        getattr(target, failure_field).CopyFrom(failure_message(result, version))
    elif isinstance(result, bytes):
        getattr(target, value_field).CopyFrom(_value(result))
    elif result is None:
        getattr(target, void_field).SetInParent()
    elif isinstance(result, str):
        target.invocation_id = result
    elif isinstance(result, list):
        target.state_keys.keys.extend(k.encode() for k in result)


def _result_of(message: typing.Any, oneof: str = "result") -> e.Result:
    which = message.WhichOneof(oneof)
    if which is None or which == "void":
        return None
    if which in ("value", "completion_value"):
        return bytes(getattr(message, which).content)
    if which in ("failure", "completion_failure"):
        return failure_of(getattr(message, which))
    if which == "invocation_id":
        return message.invocation_id
    if which == "state_keys":
        return [k.decode() for k in message.state_keys.keys]
    raise ProtocolError(f"unexpected result variant {which}")


def _headers(headers: list[tuple[str, str]]) -> list[typing.Any]:
    return [M["Header"](key=k, value=v) for k, v in headers]


# ---------------------------------------------------------------- commands


def command_to_message(entry: e.Entry, version: int) -> tuple[int, typing.Any]:
    """The frame type and message of a command, as a server replays it or an SDK sends it."""
    name = getattr(entry, "name", "")
    if isinstance(entry, e.Input):
        return 0x0400, M["InputCommandMessage"](headers=_headers(entry.headers), value=_value(entry.value), name=name)
    if isinstance(entry, e.Output):
        message = M["OutputCommandMessage"](name=name)
        _set_result(message, entry.result, version)
        return 0x0401, message
    if isinstance(entry, e.Run):
        return 0x0411, M["RunCommandMessage"](result_completion_id=entry.completion_id, name=name)
    if isinstance(entry, e.Sleep):
        return 0x040C, M["SleepCommandMessage"](
            wake_up_time=entry.wake_up_ms, result_completion_id=entry.completion_id, name=name
        )
    if isinstance(entry, e.Call):
        message = M["CallCommandMessage"](
            service_name=entry.target.service,
            handler_name=entry.target.handler,
            parameter=entry.value,
            headers=_headers(entry.headers),
            key=entry.target.key or "",
            invocation_id_notification_idx=entry.invocation_id_completion_id,
            result_completion_id=entry.completion_id,
            name=name,
        )
        if entry.idempotency_key is not None:
            message.idempotency_key = entry.idempotency_key
        return 0x040D, message
    if isinstance(entry, e.OneWayCall):
        message = M["OneWayCallCommandMessage"](
            service_name=entry.target.service,
            handler_name=entry.target.handler,
            parameter=entry.value,
            invoke_time=entry.invoke_at_ms,
            headers=_headers(entry.headers),
            key=entry.target.key or "",
            invocation_id_notification_idx=entry.invocation_id_completion_id,
            name=name,
        )
        if entry.idempotency_key is not None:
            message.idempotency_key = entry.idempotency_key
        return 0x040E, message
    if isinstance(entry, e.GetState):
        message = M["GetEagerStateCommandMessage"](key=entry.key.encode(), name=name)
        if entry.value is None:
            message.void.SetInParent()
        else:
            message.value.CopyFrom(_value(entry.value))
        return 0x0407, message
    if isinstance(entry, e.GetLazyState):
        return 0x0402, M["GetLazyStateCommandMessage"](
            key=entry.key.encode(), result_completion_id=entry.completion_id, name=name
        )
    if isinstance(entry, e.GetStateKeys):
        return 0x0408, M["GetEagerStateKeysCommandMessage"](
            value=M["StateKeys"](keys=[k.encode() for k in entry.keys]), name=name
        )
    if isinstance(entry, e.GetLazyStateKeys):
        return 0x0406, M["GetLazyStateKeysCommandMessage"](result_completion_id=entry.completion_id, name=name)
    if isinstance(entry, e.SetState):
        return 0x0403, M["SetStateCommandMessage"](key=entry.key.encode(), value=_value(entry.value), name=name)
    if isinstance(entry, e.ClearState):
        return 0x0404, M["ClearStateCommandMessage"](key=entry.key.encode(), name=name)
    if isinstance(entry, e.ClearAllState):
        return 0x0405, M["ClearAllStateCommandMessage"](name=name)
    if isinstance(entry, e.GetPromise):
        return 0x0409, M["GetPromiseCommandMessage"](key=entry.key, result_completion_id=entry.completion_id, name=name)
    if isinstance(entry, e.PeekPromise):
        return 0x040A, M["PeekPromiseCommandMessage"](key=entry.key, result_completion_id=entry.completion_id, name=name)
    if isinstance(entry, e.CompletePromise):
        message = M["CompletePromiseCommandMessage"](key=entry.key, result_completion_id=entry.completion_id, name=name)
        _set_result(message, entry.result, version, value_field="completion_value", failure_field="completion_failure")
        return 0x040B, message
    if isinstance(entry, e.CompleteAwakeable):
        message = M["CompleteAwakeableCommandMessage"](awakeable_id=entry.awakeable_id, name=name)
        _set_result(message, entry.result, version)
        return 0x0414, message
    if isinstance(entry, e.SendSignal):
        message = M["SendSignalCommandMessage"](
            target_invocation_id=entry.target_invocation_id, idx=entry.signal_index, entry_name=name
        )
        _set_result(message, entry.result, version)
        return 0x0410, message
    if isinstance(entry, e.SendNamedSignal):
        message = M["SendSignalCommandMessage"](
            target_invocation_id=entry.target_invocation_id, name=entry.signal_name, entry_name=name
        )
        _set_result(message, entry.result, version)
        return 0x0410, message
    if isinstance(entry, e.AttachInvocation):
        return 0x0412, M["AttachInvocationCommandMessage"](
            invocation_id=entry.target_invocation_id, result_completion_id=entry.completion_id, name=name
        )
    if isinstance(entry, e.GetInvocationOutput):
        return 0x0413, M["GetInvocationOutputCommandMessage"](
            invocation_id=entry.target_invocation_id, result_completion_id=entry.completion_id, name=name
        )
    raise ProtocolError(f"{entry.type_name} has no protocol form")


def _target_invocation_id(message: typing.Any) -> str:
    which = message.WhichOneof("target")
    if which == "invocation_id":
        return message.invocation_id
    if which == "workflow_target":
        return ids.workflow_run_id(message.workflow_target.workflow_name, message.workflow_target.workflow_key)
    if which == "idempotent_request_target":
        target = message.idempotent_request_target
        key = target.service_key if target.HasField("service_key") else None
        return ids.idempotent_invocation_id(e.Target(target.service_name, target.handler_name, key), target.idempotency_key)
    raise ProtocolError("an attach or get-output command names no target")


def message_to_command(type_id: int, message: typing.Any) -> e.Entry:
    """A command as an SDK sent it (or a server replayed it)."""
    if type_id == 0x0400:
        return e.Input(value=bytes(message.value.content), headers=[(h.key, h.value) for h in message.headers])
    if type_id == 0x0401:
        return e.Output(result=typing.cast(typing.Union[bytes, e.Failure], _result_of(message) or b""), name=message.name)
    if type_id == 0x0411:
        return e.Run(name=message.name, completion_id=message.result_completion_id)
    if type_id == 0x040C:
        return e.Sleep(wake_up_ms=message.wake_up_time, completion_id=message.result_completion_id, name=message.name)
    if type_id in (0x040D, 0x040E):
        target = e.Target(message.service_name, message.handler_name, message.key or None)
        idempotency_key = message.idempotency_key if message.HasField("idempotency_key") else None
        headers = [(h.key, h.value) for h in message.headers]
        if type_id == 0x040D:
            return e.Call(
                target=target,
                value=bytes(message.parameter),
                completion_id=message.result_completion_id,
                invocation_id_completion_id=message.invocation_id_notification_idx,
                headers=headers,
                idempotency_key=idempotency_key,
                name=message.name,
            )
        return e.OneWayCall(
            target=target,
            value=bytes(message.parameter),
            invoke_at_ms=message.invoke_time,
            invocation_id_completion_id=message.invocation_id_notification_idx,
            headers=headers,
            idempotency_key=idempotency_key,
            name=message.name,
        )
    if type_id == 0x0407:
        which = message.WhichOneof("result")
        if which is None:
            raise ProtocolError("a GetEagerState command has no result")
        return e.GetState(
            key=message.key.decode(), value=bytes(message.value.content) if which == "value" else None, name=message.name
        )
    if type_id == 0x0402:
        return e.GetLazyState(key=message.key.decode(), completion_id=message.result_completion_id, name=message.name)
    if type_id == 0x0408:
        return e.GetStateKeys(keys=[k.decode() for k in message.value.keys], name=message.name)
    if type_id == 0x0406:
        return e.GetLazyStateKeys(completion_id=message.result_completion_id, name=message.name)
    if type_id == 0x0403:
        return e.SetState(key=message.key.decode(), value=bytes(message.value.content), name=message.name)
    if type_id == 0x0404:
        return e.ClearState(key=message.key.decode(), name=message.name)
    if type_id == 0x0405:
        return e.ClearAllState(name=message.name)
    if type_id == 0x0409:
        return e.GetPromise(key=message.key, completion_id=message.result_completion_id, name=message.name)
    if type_id == 0x040A:
        return e.PeekPromise(key=message.key, completion_id=message.result_completion_id, name=message.name)
    if type_id == 0x040B:
        result = _result_of(message, "completion")
        if result is None:
            raise ProtocolError("a CompletePromise command completes with nothing")
        return e.CompletePromise(
            key=message.key,
            result=typing.cast(typing.Union[bytes, e.Failure], result),
            completion_id=message.result_completion_id,
            name=message.name,
        )
    if type_id == 0x0414:
        result = _result_of(message)
        return e.CompleteAwakeable(
            awakeable_id=message.awakeable_id,
            result=typing.cast(typing.Union[bytes, e.Failure], result if result is not None else b""),
            name=message.name,
        )
    if type_id == 0x0410:
        which = message.WhichOneof("signal_id")
        if which == "name":
            return e.SendNamedSignal(
                target_invocation_id=message.target_invocation_id,
                signal_name=message.name,
                result=typing.cast(typing.Union[bytes, e.Failure, None], _result_of(message)),
                name=message.entry_name,
            )
        if which != "idx":
            raise ProtocolError("a SendSignal command names no signal")
        return e.SendSignal(
            target_invocation_id=message.target_invocation_id,
            signal_index=message.idx,
            result=typing.cast(typing.Union[bytes, e.Failure, None], _result_of(message)),
            name=message.entry_name,
        )
    if type_id == 0x0412:
        return e.AttachInvocation(
            target_invocation_id=_target_invocation_id(message), completion_id=message.result_completion_id, name=message.name
        )
    if type_id == 0x0413:
        return e.GetInvocationOutput(
            target_invocation_id=_target_invocation_id(message), completion_id=message.result_completion_id, name=message.name
        )
    raise ProtocolError(f"unknown command type 0x{type_id:04x}")


# ---------------------------------------------------------------- notifications

_COMPLETION_TYPE_OF_COMMAND: dict[type, int] = {
    e.Run: m.RUN_DONE,
    e.Sleep: m.SLEEP_DONE,
    e.Call: m.CALL_DONE,
    e.GetLazyState: m.GET_LAZY_STATE_DONE,
    e.GetLazyStateKeys: m.GET_LAZY_STATE_KEYS_DONE,
    e.GetPromise: m.GET_PROMISE_DONE,
    e.PeekPromise: m.PEEK_PROMISE_DONE,
    e.CompletePromise: m.COMPLETE_PROMISE_DONE,
    e.AttachInvocation: m.ATTACH_DONE,
    e.GetInvocationOutput: m.GET_OUTPUT_DONE,
}


def completion_types(journal: typing.Iterable[e.Entry]) -> dict[int, int]:
    """Which notification type completes each completion id of a journal's commands."""
    types: dict[int, int] = {}
    for entry in journal:
        if isinstance(entry, (e.Call, e.OneWayCall)):
            types[entry.invocation_id_completion_id] = m.CALL_INVOCATION_ID_DONE
        kind = _COMPLETION_TYPE_OF_COMMAND.get(type(entry))
        if kind is not None:
            types[entry.completion_id] = kind  # type: ignore[attr-defined]
    return types


def notification_to_message(notification: e.Notification, types: dict[int, int], version: int) -> tuple[int, typing.Any]:
    message = M["NotificationMessage"]()
    if isinstance(notification, e.Signal):
        message.signal_id = notification.signal_index
        type_id = m.SIGNAL
    elif isinstance(notification, e.NamedSignal):
        message.signal_name = notification.signal_name
        type_id = m.SIGNAL
    else:
        message.completion_id = notification.completion_id
        type_id = types.get(notification.completion_id, m.RUN_DONE)
    _set_result(message, notification.result, version)
    if message.WhichOneof("result") is None:
        message.void.SetInParent()
    return type_id, message


def message_to_notification(type_id: int, message: typing.Any) -> e.Notification:
    which = message.WhichOneof("id")
    result = _result_of(message)
    if which == "completion_id":
        return e.Completion(completion_id=message.completion_id, result=result)
    if which == "signal_id":
        return e.Signal(signal_index=message.signal_id, result=result)
    if which == "signal_name":
        return e.NamedSignal(signal_name=message.signal_name, result=result)
    raise ProtocolError("a notification without an id")


def journal_to_frames(journal: list[e.Entry], version: int) -> list[tuple[int, typing.Any]]:
    types = completion_types(journal)
    frames = []
    for entry in journal:
        if entry.is_command:
            frames.append(command_to_message(entry, version))
        else:
            frames.append(notification_to_message(typing.cast(e.Notification, entry), types, version))
    return frames
