"""Restate's service protocol V5/V6 messages, defined here from the public protocol's facts.

Message names, type ids and field numbers are those of the public protocol
definition (package `dev.restate.service.protocol`); the definitions below are
our own, turned into protobuf classes at import time with the `protobuf`
library's descriptor API, so no generated code is checked in.

A field is (number, name, type, label, oneof); a type is a scalar name or
another message of this file.
"""

from __future__ import annotations

import typing

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "dev.restate.service.protocol"

_SCALARS = {
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
}

Field = tuple  # (number, name, type, "repeated" | "optional" | "", oneof name | "")

# A notification's result: void, value, failure, an invocation id or state keys.
_NOTIFICATION_RESULT: list[Field] = [
    (4, "void", "Void", "", "result"),
    (5, "value", "Value", "", "result"),
    (6, "failure", "Failure", "", "result"),
    (16, "invocation_id", "string", "", "result"),
    (17, "state_keys", "StateKeys", "", "result"),
]

SCHEMA: dict[str, list[Field]] = {
    # ------------------------------------------------------------ common types
    "Void": [],
    "Value": [(1, "content", "bytes", "", "")],
    "StateKeys": [(1, "keys", "bytes", "repeated", "")],
    "Header": [(1, "key", "string", "", ""), (2, "value", "string", "", "")],
    "FailureMetadata": [(1, "key", "string", "", ""), (2, "value", "string", "", "")],
    "Failure": [
        (1, "code", "uint32", "", ""),
        (2, "message", "string", "", ""),
        (3, "metadata", "FailureMetadata", "repeated", ""),  # V6
    ],
    "WorkflowTarget": [(1, "workflow_name", "string", "", ""), (2, "workflow_key", "string", "", "")],
    "IdempotentRequestTarget": [
        (1, "service_name", "string", "", ""),
        (2, "service_key", "string", "optional", ""),
        (3, "handler_name", "string", "", ""),
        (4, "idempotency_key", "string", "", ""),
    ],
    # ------------------------------------------------------------ control
    "StateEntry": [(1, "key", "bytes", "", ""), (2, "value", "bytes", "", "")],
    "StartMessage": [
        (1, "id", "bytes", "", ""),
        (2, "debug_id", "string", "", ""),
        (3, "known_entries", "uint32", "", ""),
        (4, "state_map", "StateEntry", "repeated", ""),
        (5, "partial_state", "bool", "", ""),
        (6, "key", "string", "", ""),
        (7, "retry_count_since_last_stored_entry", "uint32", "", ""),
        (8, "duration_since_last_stored_entry", "uint64", "", ""),
        (9, "random_seed", "uint64", "", ""),  # V6
    ],
    "SuspensionMessage": [
        (1, "waiting_completions", "uint32", "repeated", ""),
        (2, "waiting_signals", "uint32", "repeated", ""),
        (3, "waiting_named_signals", "string", "repeated", ""),
    ],
    "ErrorMessage": [
        (1, "code", "uint32", "", ""),
        (2, "message", "string", "", ""),
        (3, "stacktrace", "string", "", ""),
        (4, "related_command_index", "uint32", "optional", ""),
        (5, "related_command_name", "string", "optional", ""),
        (6, "related_command_type", "uint32", "optional", ""),
        (8, "next_retry_delay", "uint64", "optional", ""),
    ],
    "EndMessage": [],
    "CommandAckMessage": [(1, "command_index", "uint32", "", "")],
    "ProposeRunCompletionMessage": [
        (1, "result_completion_id", "uint32", "", ""),
        (14, "value", "bytes", "", "result"),
        (15, "failure", "Failure", "", "result"),
    ],
    # ------------------------------------------------------------ commands
    "InputCommandMessage": [
        (1, "headers", "Header", "repeated", ""),
        (14, "value", "Value", "", ""),
        (12, "name", "string", "", ""),
    ],
    "OutputCommandMessage": [
        (14, "value", "Value", "", "result"),
        (15, "failure", "Failure", "", "result"),
        (12, "name", "string", "", ""),
    ],
    "GetLazyStateCommandMessage": [
        (1, "key", "bytes", "", ""),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "SetStateCommandMessage": [(1, "key", "bytes", "", ""), (3, "value", "Value", "", ""), (12, "name", "string", "", "")],
    "ClearStateCommandMessage": [(1, "key", "bytes", "", ""), (12, "name", "string", "", "")],
    "ClearAllStateCommandMessage": [(12, "name", "string", "", "")],
    "GetLazyStateKeysCommandMessage": [(11, "result_completion_id", "uint32", "", ""), (12, "name", "string", "", "")],
    "GetEagerStateCommandMessage": [
        (1, "key", "bytes", "", ""),
        (13, "void", "Void", "", "result"),
        (14, "value", "Value", "", "result"),
        (12, "name", "string", "", ""),
    ],
    "GetEagerStateKeysCommandMessage": [(14, "value", "StateKeys", "", ""), (12, "name", "string", "", "")],
    "GetPromiseCommandMessage": [
        (1, "key", "string", "", ""),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "PeekPromiseCommandMessage": [
        (1, "key", "string", "", ""),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "CompletePromiseCommandMessage": [
        (1, "key", "string", "", ""),
        (2, "completion_value", "Value", "", "completion"),
        (3, "completion_failure", "Failure", "", "completion"),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "SleepCommandMessage": [
        (1, "wake_up_time", "uint64", "", ""),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "CallCommandMessage": [
        (1, "service_name", "string", "", ""),
        (2, "handler_name", "string", "", ""),
        (3, "parameter", "bytes", "", ""),
        (4, "headers", "Header", "repeated", ""),
        (5, "key", "string", "", ""),
        (6, "idempotency_key", "string", "optional", ""),
        (10, "invocation_id_notification_idx", "uint32", "", ""),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "OneWayCallCommandMessage": [
        (1, "service_name", "string", "", ""),
        (2, "handler_name", "string", "", ""),
        (3, "parameter", "bytes", "", ""),
        (4, "invoke_time", "uint64", "", ""),
        (5, "headers", "Header", "repeated", ""),
        (6, "key", "string", "", ""),
        (7, "idempotency_key", "string", "optional", ""),
        (10, "invocation_id_notification_idx", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "SendSignalCommandMessage": [
        (1, "target_invocation_id", "string", "", ""),
        (2, "idx", "uint32", "", "signal_id"),
        (3, "name", "string", "", "signal_id"),
        (4, "void", "Void", "", "result"),
        (5, "value", "Value", "", "result"),
        (6, "failure", "Failure", "", "result"),
        (12, "entry_name", "string", "", ""),
    ],
    "RunCommandMessage": [(11, "result_completion_id", "uint32", "", ""), (12, "name", "string", "", "")],
    "AttachInvocationCommandMessage": [
        (1, "invocation_id", "string", "", "target"),
        (3, "idempotent_request_target", "IdempotentRequestTarget", "", "target"),
        (4, "workflow_target", "WorkflowTarget", "", "target"),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "GetInvocationOutputCommandMessage": [
        (1, "invocation_id", "string", "", "target"),
        (3, "idempotent_request_target", "IdempotentRequestTarget", "", "target"),
        (4, "workflow_target", "WorkflowTarget", "", "target"),
        (11, "result_completion_id", "uint32", "", ""),
        (12, "name", "string", "", ""),
    ],
    "CompleteAwakeableCommandMessage": [
        (1, "awakeable_id", "string", "", ""),
        (2, "value", "Value", "", "result"),
        (3, "failure", "Failure", "", "result"),
        (12, "name", "string", "", ""),
    ],
    # ------------------------------------------------------------ notifications: one shape for all
    "NotificationMessage": [
        (1, "completion_id", "uint32", "", "id"),
        (2, "signal_id", "uint32", "", "id"),
        (3, "signal_name", "string", "", "id"),
        *_NOTIFICATION_RESULT,
    ],
}

# Message type ids of the frame header.
START, SUSPENSION, ERROR, END, COMMAND_ACK, PROPOSE_RUN_COMPLETION = 0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0005
COMMAND_TYPES: dict[int, str] = {
    0x0400: "InputCommandMessage",
    0x0401: "OutputCommandMessage",
    0x0402: "GetLazyStateCommandMessage",
    0x0403: "SetStateCommandMessage",
    0x0404: "ClearStateCommandMessage",
    0x0405: "ClearAllStateCommandMessage",
    0x0406: "GetLazyStateKeysCommandMessage",
    0x0407: "GetEagerStateCommandMessage",
    0x0408: "GetEagerStateKeysCommandMessage",
    0x0409: "GetPromiseCommandMessage",
    0x040A: "PeekPromiseCommandMessage",
    0x040B: "CompletePromiseCommandMessage",
    0x040C: "SleepCommandMessage",
    0x040D: "CallCommandMessage",
    0x040E: "OneWayCallCommandMessage",
    0x0410: "SendSignalCommandMessage",
    0x0411: "RunCommandMessage",
    0x0412: "AttachInvocationCommandMessage",
    0x0413: "GetInvocationOutputCommandMessage",
    0x0414: "CompleteAwakeableCommandMessage",
}
COMMAND_TYPE_IDS = {name: type_id for type_id, name in COMMAND_TYPES.items()}
CONTROL_TYPES: dict[int, str] = {
    START: "StartMessage",
    SUSPENSION: "SuspensionMessage",
    ERROR: "ErrorMessage",
    END: "EndMessage",
    COMMAND_ACK: "CommandAckMessage",
    PROPOSE_RUN_COMPLETION: "ProposeRunCompletionMessage",
}
# Completion notifications: 0x8000 plus the low bits of their command's id (call ids: 0x800E).
GET_LAZY_STATE_DONE, GET_LAZY_STATE_KEYS_DONE = 0x8002, 0x8006
GET_PROMISE_DONE, PEEK_PROMISE_DONE, COMPLETE_PROMISE_DONE = 0x8009, 0x800A, 0x800B
SLEEP_DONE, CALL_DONE, CALL_INVOCATION_ID_DONE = 0x800C, 0x800D, 0x800E
RUN_DONE, ATTACH_DONE, GET_OUTPUT_DONE = 0x8011, 0x8012, 0x8013
SIGNAL = 0xFBFF
NOTIFICATION_TYPES = frozenset(
    {
        GET_LAZY_STATE_DONE,
        GET_LAZY_STATE_KEYS_DONE,
        GET_PROMISE_DONE,
        PEEK_PROMISE_DONE,
        COMPLETE_PROMISE_DONE,
        SLEEP_DONE,
        CALL_DONE,
        CALL_INVOCATION_ID_DONE,
        RUN_DONE,
        ATTACH_DONE,
        GET_OUTPUT_DONE,
        SIGNAL,
    }
)


def is_command(type_id: int) -> bool:
    return 0x0400 <= type_id < 0x8000


def is_notification(type_id: int) -> bool:
    return 0x8000 <= type_id < 0xFC00


def _build() -> dict[str, type]:
    file = descriptor_pb2.FileDescriptorProto(name="durio_restate_protocol.proto", package=PACKAGE, syntax="proto3")
    for message_name, fields in SCHEMA.items():
        message = file.message_type.add(name=message_name)
        oneofs: dict[str, int] = {}
        for number, name, type_name, label, oneof in fields:
            field = message.field.add(name=name, number=number)
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{type_name}"
            field.label = (
                descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                if label == "repeated"
                else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
            )
            if label == "optional":
                oneof = f"_{name}"  # proto3 `optional`: presence through a synthetic oneof
                field.proto3_optional = True
            if oneof:
                if oneof not in oneofs:
                    oneofs[oneof] = len(message.oneof_decl)
                    message.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs[oneof]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in SCHEMA}


# Synthetic oneofs of proto3 `optional` fields must come after the real ones.
def _reorder_optional_last() -> None:
    for fields in SCHEMA.values():
        fields.sort(key=lambda f: (f[3] == "optional",))


_reorder_optional_last()
MESSAGES: dict[str, typing.Any] = _build()


def message(name: str, **fields: typing.Any) -> typing.Any:
    return MESSAGES[name](**fields)
