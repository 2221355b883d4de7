"""Storage faults: a full LMDB map grows; a corrupt or unknown-version frame fails only its invocation;
a full disk fails requests with a clear 5xx, writes nothing half, and service resumes when space returns."""

from __future__ import annotations

import json

import pathlib
import subprocess

import httpx
import pytest


import durio as restate
from durio.actors.runtime import RuntimeConfig, open_runtime
from durio.storage import schema
from durio.storage.frames import pack_entry
from durio.journal.entries import Run
from durio.storage.lmdb_store import LmdbStore
from tests.conftest import TEST_APPS, ServerProcess, invoke, wait_until

blobs = restate.VirtualObject("Blobs")
waiter = restate.Service("Waiter")
published: dict[str, str] = {}


@blobs.handler()
async def put(ctx: restate.ObjectContext, size: int) -> int:
    ctx.set(f"blob-{len(await ctx.state_keys())}", "x" * size)
    return len(await ctx.state_keys())


@waiter.handler()
async def wait(ctx: restate.Context, name: str) -> str:
    awakeable_id, value = ctx.awakeable(type_hint=str)
    await ctx.run_typed("publish", lambda: published.__setitem__(name, awakeable_id))
    return await value


async def test_a_full_lmdb_map_grows_by_itself(tmp_path) -> None:
    config = RuntimeConfig(map_size=256 * 1024)
    async with open_runtime([blobs], tmp_path / "data", config) as runtime:
        initial = runtime.store.backend.map_size
        for _ in range(40):
            await invoke(runtime, "Blobs", "put", 50_000, key="k")
        grown = runtime.store.backend.map_size
        state = await runtime.store.read(lambda txn: txn.state_of("Blobs", "k"))
    assert grown > initial
    assert len(state) == 40 and all(len(v) == 50_002 for v in state.values())


def corrupt_entry(data_dir: pathlib.Path, invocation_id: str, index: int, frame: bytes) -> None:
    store = LmdbStore(data_dir)
    try:
        with store._env.begin(write=True) as txn:  # a test reaching under the API on purpose
            txn.put(schema.journal_key(invocation_id, index), frame, db=store._dbs[schema.JOURNAL])
    finally:
        store.close()


async def test_a_corrupt_or_unknown_version_frame_fails_only_its_invocation(tmp_path) -> None:
    published.clear()
    data_dir = tmp_path / "data"
    async with open_runtime([waiter], data_dir, RuntimeConfig(suspend_after_s=0.0)) as runtime:
        ids = {name: await invoke(runtime, "Waiter", "wait", name, send=True) for name in ("corrupt", "future", "healthy")}

        async def all_suspended() -> bool:
            records = await runtime.store.read(lambda txn: [txn.get_invocation(i) for i in ids.values()])
            return all(r.status == "suspended" for r in records)

        await wait_until(all_suspended)
    corrupt_entry(data_dir, ids["corrupt"], 1, b"\x01\xff\xfe garbage")
    frame = pack_entry(Run(name="publish", completion_id=1))
    corrupt_entry(data_dir, ids["future"], 1, bytes([9]) + frame[1:])

    async with open_runtime([waiter], data_dir) as runtime:
        for name in ids:
            await runtime.write(runtime.transitions.complete_awakeable(published[name], b'"go"'))
        healthy = await runtime.attach(ids["healthy"])
        corrupt = await runtime.attach(ids["corrupt"])
        future = await runtime.attach(ids["future"])
    assert healthy == b'"go"'
    assert corrupt.code == 500 and f"journal entry 1 of {ids['corrupt']} is corrupt" in corrupt.message
    assert future.code == 500 and "schema version 9" in future.message and f"journal entry 1 of {ids['future']}" in future.message


def _mount_tmpfs(path: pathlib.Path, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, capture_output=True)


def _remount(path: pathlib.Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    """A 3 MiB tmpfs: a disk that really fills up (mounting needs root, which the test machines have)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        _mount_tmpfs(disk, "3m")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {exc}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


async def test_a_full_disk_fails_requests_cleanly_and_service_resumes_when_space_returns(small_disk, tmp_path) -> None:
    server = ServerProcess(TEST_APPS / "steps_app.py", small_disk / "data", tmp_path / "server.log", {"STEPS_LOG": str(tmp_path / "steps.log")})
    await server.start()
    accepted: list[str] = []
    failure: httpx.Response | None = None
    async with server.client() as client:
        for n in range(200):
            response = await client.post("/restate/send/Steps/run", content=json.dumps(0).encode() + b" " * 100_000,
                                         headers={"Idempotency-Key": f"fill-{n}"})
            if response.status_code >= 500:
                failure = response
                failed_key = f"fill-{n}"
                break
            assert response.status_code == 202, response.text
            accepted.append(response.json()["invocationId"])
        assert failure is not None, "the disk never filled up"
        assert failure.status_code == 503
        assert "disk" in failure.json()["message"] and "full" in failure.json()["message"]
        assert (await client.get("/restate/health")).status_code == 200, "the server stays up"

        # Nothing half-written: the refused invocation does not exist.
        retry_id = None
        _remount(small_disk, "64m")
        again = await client.post("/restate/send/Steps/run", content=b"0", headers={"Idempotency-Key": failed_key})
        assert again.status_code == 202 and again.json()["status"] == "Accepted", "it was never stored"
        retry_id = again.json()["invocationId"]
        for invocation_id in accepted + [retry_id]:
            result = await client.get(f"/restate/attach/{invocation_id}")
            assert result.status_code == 200, result.text
    assert server.terminate() == 0


