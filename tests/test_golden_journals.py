"""Golden journals: journals written by an earlier durio are checked in and replayed on every run.

A change to the frame format, or a handler change that makes replay take a
different path (nondeterminism), fails here before it reaches a user's data.
"""

from __future__ import annotations

import json
import pathlib

import msgpack
import pytest

from durio.actors.effects import Applied, Effects
from durio.actors.runtime import open_runtime
from durio.journal import entries as e
from durio.storage.frames import unpack_entry
from durio.storage.records import InvocationRecord, Status
from tests.golden import golden_services

GOLDEN = sorted(pathlib.Path(__file__).parent.joinpath("golden").glob("*.golden"))


def load(path: pathlib.Path) -> dict:
    return msgpack.unpackb(path.read_bytes(), raw=False)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_frames_still_decode(path: pathlib.Path) -> None:
    golden = load(path)
    entries = [unpack_entry(frame, f"{path.name} entry {i}") for i, frame in enumerate(golden["frames"])]
    assert isinstance(entries[0], e.Input) and isinstance(entries[-1], e.Output)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
async def test_replaying_a_golden_journal_reaches_the_same_output_without_rerunning_steps(path: pathlib.Path, tmp_path) -> None:
    golden = load(path)
    entries = [unpack_entry(frame, f"{path.name} entry {i}") for i, frame in enumerate(golden["frames"])]
    journal = entries[:-1]  # everything but the Output: recovery must replay the rest and finish
    record = InvocationRecord(
        id=golden["invocation_id"],
        target=e.Target("Golden", golden["handler"]),
        handler_kind=None,
        status=Status.READY,
        created_ms=1,
        modified_ms=1,
    )

    def seed(txn) -> Applied:  # type: ignore[no-untyped-def]
        txn.put_invocation(record)
        for index, entry in enumerate(journal):
            txn.put_entry(record.id, index, entry)
        return Applied(None, Effects())

    async with open_runtime(golden_services.services, tmp_path / "seed") as runtime:
        await runtime.write(seed)
    golden_services.executions.clear()
    async with open_runtime(golden_services.services, tmp_path / "seed") as runtime:
        result = await runtime.attach(record.id)
        replayed = await runtime.store.read(lambda txn: txn.journal(record.id))
    assert json.loads(result) == json.loads(golden["output"])
    assert golden_services.executions == [], "replay ran a step whose result was in the journal"
    assert [type(x) for x in replayed] == [type(x) for x in entries]
