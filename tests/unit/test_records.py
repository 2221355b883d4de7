"""Stored records hold the names of statuses and kinds; read back, they are the enum members, and the bytes are
the ones a durio before these enums wrote (tests/fixtures' old data directories still open)."""

from __future__ import annotations

import pytest

from durio.journal import entries as e
from durio.kinds import HandlerKind, ServiceKind
from durio.sdk.errors import ErrorCode
from durio.storage.frames import FrameError, pack, pack_record, unpack_record
from durio.storage.records import InvocationRecord, Status

TARGET = e.Target("Counter", "add", "k")
FIELDS = {
    "id": "inv_1",
    "target": TARGET,
    "handler_kind": "exclusive",
    "status": "backing-off",
    "created_ms": 1,
    "modified_ms": 2,
}


def test_a_stored_status_and_handler_kind_read_back_as_enum_members() -> None:
    record = unpack_record(pack(FIELDS), InvocationRecord, "the record of inv_1")
    assert record.status is Status.BACKING_OFF and record.handler_kind is HandlerKind.EXCLUSIVE
    assert record.is_exclusive and not record.is_completed


def test_members_are_stored_as_the_same_bytes_as_their_names() -> None:
    as_members = InvocationRecord(
        id="inv_1",
        target=TARGET,
        handler_kind=HandlerKind.EXCLUSIVE,
        status=Status.BACKING_OFF,
        created_ms=1,
        modified_ms=2,
        result=e.Failure(ErrorCode.CONFLICT, "killed"),
    )
    as_names = InvocationRecord(
        id="inv_1",
        target=TARGET,
        handler_kind="exclusive",
        status="backing-off",  # type: ignore[arg-type]
        created_ms=1,
        modified_ms=2,
        result=e.Failure(409, "killed"),
    )
    assert pack_record(as_members) == pack_record(as_names)


def test_a_status_no_durio_knows_fails_the_read_naming_the_record() -> None:
    with pytest.raises(FrameError, match="the record of inv_1 does not decode as a InvocationRecord"):
        unpack_record(pack(dict(FIELDS, status="hibernating")), InvocationRecord, "the record of inv_1")


def test_kinds_are_their_restate_names() -> None:
    assert [k.value for k in HandlerKind] == ["exclusive", "shared", "workflow"]
    assert [k.value for k in ServiceKind] == ["service", "object", "workflow"]
    assert f"{HandlerKind.SHARED}" == "shared" and HandlerKind("workflow") == "workflow"
