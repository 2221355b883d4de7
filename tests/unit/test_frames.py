"""Stored frames: every journal entry and record survives a round trip; a bad frame raises FrameError naming it."""

from __future__ import annotations

import msgpack
import pytest

from durio.journal import entries as e
from durio.storage import frames
from durio.storage.frames import FrameError, pack, pack_entry, pack_record, unpack, unpack_entry, unpack_record
from durio.storage.records import InvocationRecord, Status

TARGET = e.Target("Counter", "add", "k")
FAILURE = e.Failure(500, "boom", {"retryable": "no"})
INVOCATION = "inv_1abc"

# One entry of every stored type, with every field set away from its default.
SAMPLES: list[e.Entry] = [
    e.Input(ts=1, value=b"in", headers=[("a", "b")]),
    e.Output(ts=2, result=FAILURE, name="out"),
    e.Run(ts=3, name="pay", completion_id=1),
    e.Sleep(ts=4, wake_up_ms=99, completion_id=2, name="nap"),
    e.Call(
        ts=5,
        target=TARGET,
        value=b"v",
        completion_id=3,
        invocation_id_completion_id=4,
        callee_id=INVOCATION,
        headers=[("h", "1")],
        idempotency_key="once",
        name="call",
    ),
    e.OneWayCall(
        ts=6,
        target=e.Target("Greeter", "greet"),
        value=b"v",
        invoke_at_ms=7,
        invocation_id_completion_id=5,
        callee_id=INVOCATION,
        idempotency_key=None,
        name="send",
    ),
    e.GetState(ts=7, key="k", value=b"1", name="get"),
    e.GetLazyState(ts=8, key="k", completion_id=6),
    e.GetStateKeys(ts=9, keys=["a", "b"]),
    e.GetLazyStateKeys(ts=10, completion_id=7),
    e.SetState(ts=11, key="k", value=b"2"),
    e.ClearState(ts=12, key="k"),
    e.ClearAllState(ts=13, name="wipe"),
    e.GetPromise(ts=14, key="p", completion_id=8),
    e.PeekPromise(ts=15, key="p", completion_id=9),
    e.CompletePromise(ts=16, key="p", result=b"r", completion_id=10),
    e.CompleteAwakeable(ts=17, awakeable_id="sign_1x", result=FAILURE),
    e.SendSignal(ts=18, target_invocation_id=INVOCATION, signal_index=17, result=None),
    e.AttachInvocation(ts=19, target_invocation_id=INVOCATION, completion_id=11),
    e.GetInvocationOutput(ts=20, target_invocation_id=INVOCATION, completion_id=12),
    e.SendNamedSignal(ts=21, target_invocation_id=INVOCATION, signal_name="go", result=b"1"),
    e.Completion(ts=22, completion_id=3, result=["a", "b"]),
    e.Signal(ts=23, signal_index=1, result=None),
    e.NamedSignal(ts=24, signal_name="go", result=FAILURE),
]


def test_the_samples_cover_every_stored_entry_type() -> None:
    assert {type(entry) for entry in SAMPLES} == set(frames.ENTRY_CODES)


@pytest.mark.parametrize("entry", SAMPLES, ids=lambda entry: entry.type_name)
def test_every_entry_type_survives_a_round_trip(entry: e.Entry) -> None:
    frame = pack_entry(entry)
    assert frame[0] == frames.SCHEMA_VERSION
    decoded = unpack_entry(frame, "entry")
    if hasattr(decoded, "headers"):
        # msgpack has no tuples: header pairs come back as two-item lists, which every reader unpacks alike.
        assert decoded.headers == [list(pair) for pair in entry.headers]  # type: ignore[attr-defined]
        decoded.headers = [tuple(pair) for pair in decoded.headers]  # type: ignore[attr-defined]
    assert decoded == entry


def test_a_record_survives_a_round_trip_with_its_target_and_failure() -> None:
    record = InvocationRecord(
        id=INVOCATION,
        target=TARGET,
        handler_kind="exclusive",
        status=Status.COMPLETED,
        created_ms=1,
        modified_ms=2,
        result=FAILURE,
        awaiting=["sleep"],
        last_failure={"code": 500},
    )
    decoded = unpack_record(pack_record(record), InvocationRecord, "record")
    assert decoded == record
    assert isinstance(decoded.target, e.Target) and isinstance(decoded.result, e.Failure)


def test_a_record_with_fields_this_durio_does_not_know_still_decodes() -> None:
    frame = pack(
        {
            "id": INVOCATION,
            "target": TARGET,
            "handler_kind": None,
            "status": "ready",
            "created_ms": 1,
            "modified_ms": 1,
            "field_from_a_newer_durio": 42,
        }
    )
    assert unpack_record(frame, InvocationRecord, "record").id == INVOCATION


def test_an_empty_frame_is_an_error_naming_it() -> None:
    with pytest.raises(FrameError, match="journal entry 3 of inv_x is empty"):
        unpack(b"", "journal entry 3 of inv_x")


def test_a_frame_from_a_newer_schema_is_refused_with_both_versions() -> None:
    frame = bytes((frames.SCHEMA_VERSION + 1,)) + msgpack.packb(1)
    with pytest.raises(FrameError, match=f"schema version {frames.SCHEMA_VERSION + 1}.*reads version {frames.SCHEMA_VERSION}"):
        unpack(frame, "the value")


def test_truncated_bytes_are_corrupt() -> None:
    frame = pack_entry(e.Run(name="pay", completion_id=1))
    with pytest.raises(FrameError, match="the entry is corrupt"):
        unpack_entry(frame[:-3], "the entry")


def test_an_unknown_entry_type_code_is_an_error() -> None:
    with pytest.raises(FrameError, match="unknown entry type 63"):
        unpack_entry(pack([63, 0]), "the entry")


def test_an_entry_with_the_wrong_number_of_fields_is_an_error() -> None:
    code = frames.ENTRY_CODES[e.Run]
    with pytest.raises(FrameError, match="has 1 fields; a run entry has 2"):
        unpack_entry(pack([code, 0, "pay"]), "the entry")


def test_an_unknown_extension_type_is_an_error() -> None:
    frame = bytes((frames.SCHEMA_VERSION,)) + msgpack.packb(msgpack.ExtType(99, b""))
    with pytest.raises(FrameError, match="unknown extension type 99"):
        unpack(frame, "the value")


def test_a_frame_that_is_not_a_record_is_an_error() -> None:
    with pytest.raises(FrameError, match="the record is not a record"):
        unpack_record(pack([1, 2]), InvocationRecord, "the record")
    with pytest.raises(FrameError, match="does not decode as a InvocationRecord"):
        unpack_record(pack({"id": INVOCATION}), InvocationRecord, "the record")


def test_a_value_of_an_unstorable_type_is_refused_when_packed() -> None:
    with pytest.raises(TypeError, match="cannot store a value of type object"):
        pack(object())
