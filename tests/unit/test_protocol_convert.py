"""Journal entries to protocol messages and back, through the wire bytes, as a remote deployment sees them."""

from __future__ import annotations

import typing

import pytest

from durio import ids
from durio.journal import entries as e
from durio.protocol import convert
from durio.protocol import messages as m
from durio.protocol.framing import ProtocolError

V5, V6 = 5, 6
TARGET = e.Target("Counter", "add", "k")
FAILURE = e.Failure(500, "boom", {"retryable": "no"})
INVOCATION = ids.new_invocation_id(None, 0)

# One command of every kind that has a protocol form, as an SDK would send it (no ts, no callee id: those
# are assigned by the server when it records the command).
COMMANDS: list[e.Entry] = [
    e.Input(value=b"in", headers=[("a", "b")]),
    e.Output(result=b'"out"', name="out"),
    e.Output(result=FAILURE),
    e.Run(name="pay", completion_id=1),
    e.Sleep(wake_up_ms=99, completion_id=2, name="nap"),
    e.Call(
        target=TARGET,
        value=b"v",
        completion_id=3,
        invocation_id_completion_id=4,
        headers=[("h", "1")],
        idempotency_key="once",
        name="call",
    ),
    e.Call(target=e.Target("Greeter", "greet"), value=b"", completion_id=3, invocation_id_completion_id=4),
    e.OneWayCall(target=TARGET, value=b"v", invoke_at_ms=7, invocation_id_completion_id=5, name="send"),
    e.GetState(key="k", value=b"1", name="get"),
    e.GetState(key="unset", value=None),
    e.GetLazyState(key="k", completion_id=6),
    e.GetStateKeys(keys=["a", "b"]),
    e.GetLazyStateKeys(completion_id=7),
    e.SetState(key="k", value=b"2"),
    e.ClearState(key="k"),
    e.ClearAllState(name="wipe"),
    e.GetPromise(key="p", completion_id=8),
    e.PeekPromise(key="p", completion_id=9),
    e.CompletePromise(key="p", result=b"r", completion_id=10),
    e.CompletePromise(key="p", result=FAILURE, completion_id=10),
    e.CompleteAwakeable(awakeable_id="sign_1x", result=b"yes"),
    e.CompleteAwakeable(awakeable_id="sign_1x", result=FAILURE),
    e.SendSignal(target_invocation_id=INVOCATION, signal_index=17, result=b"1"),
    e.SendSignal(target_invocation_id=INVOCATION, signal_index=e.CANCEL_SIGNAL, result=None),
    e.SendNamedSignal(target_invocation_id=INVOCATION, signal_name="go", result=FAILURE, name="signal"),
    e.AttachInvocation(target_invocation_id=INVOCATION, completion_id=11),
    e.GetInvocationOutput(target_invocation_id=INVOCATION, completion_id=12),
]

NOTIFICATIONS: list[e.Notification] = [
    e.Completion(completion_id=1, result=b'"value"'),
    e.Completion(completion_id=2, result=FAILURE),
    e.Completion(completion_id=3, result=None),
    e.Completion(completion_id=4, result=INVOCATION),
    e.Completion(completion_id=5, result=["a", "b"]),
    e.Signal(signal_index=e.CANCEL_SIGNAL, result=None),
    e.Signal(signal_index=17, result=b"1"),
    e.NamedSignal(signal_name="go", result=FAILURE),
]


def over_the_wire(type_id: int, message: typing.Any) -> typing.Any:
    """The message as the peer parses it from its serialized bytes."""
    name = m.COMMAND_TYPES.get(type_id) or "NotificationMessage"
    return m.MESSAGES[name].FromString(message.SerializeToString())


def test_every_entry_type_with_a_protocol_form_is_covered() -> None:
    without_protocol_form = {e.Completion, e.Signal, e.NamedSignal}
    assert {type(entry) for entry in COMMANDS} == set(e.ENTRY_TYPES) - without_protocol_form


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda entry: entry.type_name)
def test_a_command_survives_a_round_trip_through_its_message(entry: e.Entry) -> None:
    type_id, message = convert.command_to_message(entry, V6)
    assert m.is_command(type_id)
    assert convert.message_to_command(type_id, over_the_wire(type_id, message)) == entry


@pytest.mark.parametrize("notification", NOTIFICATIONS, ids=repr)
def test_a_notification_survives_a_round_trip_through_its_message(notification: e.Notification) -> None:
    type_id, message = convert.notification_to_message(notification, {}, V6)
    assert m.is_notification(type_id)
    assert convert.message_to_notification(type_id, over_the_wire(type_id, message)) == notification


def test_failure_metadata_travels_from_v6_on_only() -> None:
    entry = e.Output(result=FAILURE)
    for version, expected in ((V5, e.Failure(500, "boom")), (V6, FAILURE)):
        type_id, message = convert.command_to_message(entry, version)
        assert convert.message_to_command(type_id, over_the_wire(type_id, message)) == e.Output(result=expected)


def test_a_notification_takes_the_type_of_the_command_it_completes() -> None:
    journal: list[e.Entry] = [
        e.Input(),
        e.Call(target=TARGET, value=b"", completion_id=2, invocation_id_completion_id=1),
        e.Sleep(wake_up_ms=5, completion_id=3),
        e.GetPromise(key="p", completion_id=4),
    ]
    types = convert.completion_types(journal)
    assert types == {1: m.CALL_INVOCATION_ID_DONE, 2: m.CALL_DONE, 3: m.SLEEP_DONE, 4: m.GET_PROMISE_DONE}
    assert convert.notification_to_message(e.Completion(completion_id=3), types, V6)[0] == m.SLEEP_DONE
    assert convert.notification_to_message(e.Signal(signal_index=17), types, V6)[0] == m.SIGNAL


def test_a_journal_becomes_its_frames_in_order() -> None:
    journal: list[e.Entry] = [
        e.Input(value=b"in"),
        e.Run(name="a", completion_id=1),
        e.Completion(completion_id=1, result=b"1"),
        e.Output(result=b"done"),
    ]
    frames = convert.journal_to_frames(journal, V6)
    assert [type_id for type_id, _ in frames] == [0x0400, 0x0411, m.RUN_DONE, 0x0401]
    decoded = [
        convert.message_to_command(type_id, message)
        if m.is_command(type_id)
        else convert.message_to_notification(type_id, message)
        for type_id, message in frames
    ]
    assert decoded == journal


def test_attaching_to_a_workflow_or_an_idempotent_request_names_its_derived_invocation_id() -> None:
    workflow = m.MESSAGES["AttachInvocationCommandMessage"](
        workflow_target=m.MESSAGES["WorkflowTarget"](workflow_name="Signup", workflow_key="alice"), result_completion_id=1
    )
    assert convert.message_to_command(0x0412, workflow).target_invocation_id == ids.workflow_run_id("Signup", "alice")
    request = m.MESSAGES["GetInvocationOutputCommandMessage"](
        idempotent_request_target=m.MESSAGES["IdempotentRequestTarget"](
            service_name="Counter", service_key="k", handler_name="add", idempotency_key="once"
        ),
        result_completion_id=1,
    )
    assert convert.message_to_command(0x0413, request).target_invocation_id == ids.idempotent_invocation_id(TARGET, "once")


def test_an_attach_with_no_target_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="names no target"):
        convert.message_to_command(0x0412, m.MESSAGES["AttachInvocationCommandMessage"](result_completion_id=1))


def test_an_unknown_command_type_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="unknown command type 0x04ff"):
        convert.message_to_command(0x04FF, m.MESSAGES["RunCommandMessage"]())


def test_a_complete_promise_that_completes_with_nothing_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="completes with nothing"):
        convert.message_to_command(0x040B, m.MESSAGES["CompletePromiseCommandMessage"](key="p", result_completion_id=1))


def test_a_notification_without_an_id_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="without an id"):
        convert.message_to_notification(m.RUN_DONE, m.MESSAGES["NotificationMessage"]())


def test_a_notification_entry_has_no_command_form() -> None:
    with pytest.raises(ProtocolError, match="completion has no protocol form"):
        convert.command_to_message(e.Completion(completion_id=1), V6)
