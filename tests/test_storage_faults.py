"""Storage faults: a full LMDB map grows; a corrupt or unknown-version frame fails only its invocation;
a full disk fails requests with a clear 5xx, writes nothing half, and service resumes when space returns."""

from __future__ import annotations

import json
import pathlib
import subprocess
import threading
import typing
from datetime import timedelta

import httpx
import pytest
import anyio
import anyio.to_thread


import durio as restate
from durio.actors.runtime import RuntimeConfig, open_runtime
from durio.sdk.options import Backoff
from durio.storage import schema
from durio.storage.frames import pack_entry
from durio.journal.entries import Run
from durio.storage.lmdb_store import LmdbStore, StorageFull
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
    server = ServerProcess(
        TEST_APPS / "steps_app.py", small_disk / "data", tmp_path / "server.log", {"STEPS_LOG": str(tmp_path / "steps.log")}
    )
    await server.start()
    accepted: list[str] = []
    failure: httpx.Response | None = None
    async with server.client() as client:
        for n in range(200):
            response = await client.post(
                "/restate/send/Steps/run",
                content=json.dumps(0).encode() + b" " * 100_000,
                headers={"Idempotency-Key": f"fill-{n}"},
            )
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


# ---------------------------------------------------------------- work due while storage refused writes (red-team B2)

naps = restate.Service("Naps")
nap_log: list[str] = []


@naps.handler()
async def nap(ctx: restate.Context, seconds: float) -> str:
    try:
        await ctx.sleep(timedelta(seconds=seconds))
    except restate.TerminalError:
        await ctx.run_typed("compensate", lambda: nap_log.append("compensated"))
        raise
    return "woke"


class RefusingDisk:
    """Makes the real LMDB store refuse whole batches, as a full disk does, while `full` is set."""

    def __init__(self, backend: LmdbStore) -> None:
        self.full = False
        self.refuse_batches = 0  # refuse this many batches, then take writes again
        # Refuse the first batch whose ops match, then take writes again.
        self.refuse_when: typing.Callable[[list[typing.Any]], bool] | None = None
        self.refused = 0
        # Hold the first batch whose ops match after it commits, until `release` is set: the data is durable
        # and visible, but the writer has not yet told anyone (its on-commit callbacks wait).
        self.hold_when: typing.Callable[[list[typing.Any]], bool] | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        commit = backend.commit_batch

        def commit_batch(ops: list[typing.Any], *args: typing.Any) -> typing.Any:
            matched = self.refuse_when is not None and self.refuse_when(ops)
            if matched:
                self.refuse_when = None
            if self.full or self.refuse_batches > 0 or matched:
                self.refuse_batches = max(0, self.refuse_batches - 1)
                self.refused += 1
                raise StorageFull("the disk under the test store is full (simulated)")
            hold = self.hold_when is not None and self.hold_when(ops)
            outcome = commit(ops, *args)
            if hold:
                self.hold_when = None
                self.holding.set()
                self.release.wait(10)
            return outcome

        backend.commit_batch = commit_batch  # type: ignore[method-assign]


async def test_work_that_fell_due_while_the_disk_was_full_is_done_once_it_frees_without_a_restart(tmp_path) -> None:
    nap_log.clear()
    async with open_runtime([naps], tmp_path / "data", RuntimeConfig(suspend_after_s=0.2)) as runtime:
        disk = RefusingDisk(runtime.store.backend)
        scheduled = await invoke(runtime, "Naps", "nap", 0.0, send=True, delay_ms=300)
        sleeper = await invoke(runtime, "Naps", "nap", 0.5, send=True)

        async def sleeping() -> bool:
            record = await runtime.get_record(sleeper)
            return record.status == "suspended"

        await wait_until(sleeping)
        disk.full = True
        await anyio.sleep(1.0)  # the delayed send's start and the sleeper's wake-up fall due now, and fail
        assert disk.refused > 0, "nothing was written while the disk was full"
        disk.full = False
        with anyio.fail_after(10):
            assert await runtime.attach(scheduled) == b'"woke"'
            assert await runtime.attach(sleeper) == b'"woke"'


async def test_an_acknowledged_cancel_is_applied_even_if_its_delivery_hit_a_full_disk(tmp_path) -> None:
    nap_log.clear()
    async with open_runtime([naps], tmp_path / "data", RuntimeConfig(suspend_after_s=None)) as runtime:
        disk = RefusingDisk(runtime.store.backend)
        napper = await invoke(runtime, "Naps", "nap", 3600.0, send=True)

        async def sleeping() -> bool:
            journal = await runtime.store.read(lambda txn: txn.journal(napper))
            return any(entry.type_name == "sleep" for entry in journal)

        await wait_until(sleeping)
        outcome = await runtime.write(runtime.transitions.cancel(napper, runtime.clock.now_ms()))
        assert outcome == "signalled"
        # Acknowledged: the cancel is durable. The actor's append of the signal is queued now; refuse it.
        disk.full = True
        await anyio.sleep(0.5)
        assert disk.refused > 0
        disk.full = False
        with anyio.fail_after(10):
            result = await runtime.attach(napper)
    assert result.code == 409 and result.message == "canceled"
    assert nap_log == ["compensated"]


def fill(disk: pathlib.Path) -> pathlib.Path:
    """Write a file until the disk has no space left."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
    return filler


async def test_a_server_whose_disk_filled_and_emptied_runs_what_fell_due_meanwhile(small_disk, tmp_path) -> None:
    """The red-team reproduction: a delayed send and a wake-up fall due while the disk is full."""
    _remount(small_disk, "16m")
    server = ServerProcess(TEST_APPS / "nap_app.py", small_disk / "data", tmp_path / "server.log")
    await server.start()
    async with server.client() as client, server.client(admin=True) as admin:
        delayed = (await client.post("/restate/send/Nap/nap?delay=2s", json=0)).json()["invocationId"]
        sleeper = (await client.post("/restate/send/Nap/nap", json=2)).json()["invocationId"]
        filler = await anyio.to_thread.run_sync(fill, small_disk)
        await anyio.sleep(4)  # both fall due, and their writes hit the full disk
        # LMDB may still have free pages in its file: large bodies make it grow, which the full disk refuses.
        refused = 0
        for n in range(30):
            refused = (
                await client.post(
                    "/restate/send/Nap/nap",
                    content=b"0" + b" " * 200_000,
                    headers={"content-type": "application/json", "idempotency-key": f"probe-{n}"},
                )
            ).status_code
            if refused == 503:
                break
        filler.unlink()
        with anyio.fail_after(20):
            for invocation_id in (delayed, sleeper):
                result = await client.get(f"/restate/attach/{invocation_id}")
                assert result.status_code == 200 and result.json() == "woke", result.text
        views = [(await admin.get(f"/invocations/{i}")).json() for i in (delayed, sleeper)]
    assert refused == 503, "the disk was not full"
    assert [view["status"] for view in views] == ["completed", "completed"]
    assert "storage takes writes again" in server.output()
    assert server.terminate() == 0


async def test_a_wake_up_refused_by_a_full_disk_reaches_a_live_sleeper_once_the_disk_frees(tmp_path) -> None:
    """Found by the disk-full soak. The sleeper's actor stays alive (it never suspends); its append of
    the wake-up is refused, and storage heals before the actor retries (a 1 s backoff here), so the
    timer's refire finds the unstored copy still in memory and is dropped as a duplicate. The reload
    before the next attempt must take the wake-up again, or the sleep waits until a restart."""
    nap_log.clear()
    config = RuntimeConfig(suspend_after_s=None, invocation_backoff=Backoff(initial_s=1.0, jitter=0.0))
    async with open_runtime([naps], tmp_path / "data", config) as runtime:
        disk = RefusingDisk(runtime.store.backend)
        sleeper = await invoke(runtime, "Naps", "nap", 0.5, send=True)

        async def sleeping() -> bool:
            journal = await runtime.store.read(lambda txn: txn.journal(sleeper))
            return any(entry.type_name == "sleep" for entry in journal)

        await wait_until(sleeping)
        disk.refuse_batches = 1  # the wake-up's append, and nothing after it
        with anyio.fail_after(10):
            assert await runtime.attach(sleeper) == b'"woke"'
        assert disk.refused == 1


# ---------------------------------------------------------------- a queued invocation that ran ahead (disk-full soak)

ledgers = restate.VirtualObject("Ledgers")
ledger_gates: dict[str, anyio.Event] = {}


@ledgers.handler()
async def append(ctx: restate.ObjectContext, ref: str) -> list[str]:
    gate = ledger_gates.get(ref)
    if gate is not None:
        await ctx.run_typed("gate", gate.wait)
    entries = [*(await ctx.get("entries", type_hint=list[str]) or []), ref]
    ctx.set("entries", entries)
    return entries


async def test_a_queued_invocation_that_ran_ahead_of_its_key_keeps_its_place_in_storage(tmp_path) -> None:
    """Found by the disk-full soak: its predecessor's completion was refused, so the successor (handed
    the key early) had its writes refused too. Its failed attempt and its suspension must not turn it
    from queued into backing-off or suspended: it would then load as if it held the key, read the key's
    state from before its predecessor's writes, and overwrite them once those committed."""
    ledger_gates.clear()
    ledger_gates["first"] = anyio.Event()
    async with open_runtime([ledgers], tmp_path / "data") as runtime:
        first = await invoke(runtime, "Ledgers", "append", "first", key="k", send=True)
        second = await invoke(runtime, "Ledgers", "append", "second", key="k", send=True)
        assert (await runtime.get_record(second)).status == "pending"
        now = runtime.clock.now_ms()
        failure = {"message": "a journal write failed", "code": 500}
        await runtime.write(runtime.transitions.attempt_failed(second, 1, failure, now + 50, False, now))
        await runtime.write(runtime.transitions.suspend(second, [], now))
        record = await runtime.get_record(second)
        assert (record.status, record.retry_count) == ("pending", 0), "a queued invocation's record changed"
        ledger_gates["first"].set()
        assert await runtime.attach(first) == b'["first"]'
        assert await runtime.attach(second) == b'["first","second"]'


async def test_a_successor_admitted_while_it_reloads_after_a_refused_write_still_runs(tmp_path) -> None:
    """Found by the disk-full soak (a key's holder `ready`, its queue `pending`, nothing running them).
    The holder's completion is refused, so its successor, handed the key early, has its writes refused
    and reloads: it reads itself still queued. The holder's retry then commits, and storage admits the
    successor while that stale read is in hand; the successor must run, not give up its turn for good."""
    ledger_gates.clear()
    ledger_gates["first"] = anyio.Event()
    async with open_runtime([ledgers], tmp_path / "data") as runtime:
        first = await invoke(runtime, "Ledgers", "append", "first", key="k", send=True)
        second = await invoke(runtime, "Ledgers", "append", "second", key="k", send=True)
        third = await invoke(runtime, "Ledgers", "append", "third", key="k", send=True)
        disk = RefusingDisk(runtime.store.backend)
        disk.refuse_when = lambda ops: any(op.__qualname__.startswith("Transitions.complete.") for op in ops)

        load = runtime.load_invocation
        loads_of_second = 0

        async def load_then_let_the_first_complete(invocation_id: str):  # type: ignore[no-untyped-def]
            nonlocal loads_of_second
            loaded = await load(invocation_id)
            if invocation_id == second:
                loads_of_second += 1
                if loads_of_second == 2:  # the reload after its refused write: it reads itself queued
                    assert loaded is not None and loaded[0].status == "pending"
                    assert await runtime.attach(first) == b'["first"]'
            return loaded

        runtime.load_invocation = load_then_let_the_first_complete  # type: ignore[method-assign]
        ledger_gates["first"].set()
        with anyio.fail_after(10):
            assert await runtime.attach(second) == b'["first","second"]'
            assert await runtime.attach(third) == b'["first","second","third"]'
        assert disk.refused == 1 and loads_of_second >= 2


async def test_a_notification_stored_just_after_a_reload_read_the_journal_is_not_lost_or_miscounted(tmp_path, nursery) -> None:
    """Found by the disk-full soak (a Refunds.refund retried for ever with IndexError). A refused write
    makes the actor reload its journal; a notification it appended before that read (here: an awakeable
    result delivered meanwhile) commits only after it. The reloaded journal must not be told that entry
    is durable (it does not have it), and the invocation must still get the result."""
    published.clear()
    async with open_runtime([waiter], tmp_path / "data", RuntimeConfig(suspend_after_s=0.2)) as runtime:
        disk = RefusingDisk(runtime.store.backend)
        invocation_id = await invoke(runtime, "Waiter", "wait", "late", send=True)

        async def published_its_awakeable() -> bool:
            return "late" in published

        await wait_until(published_its_awakeable)
        disk.refuse_when = lambda ops: any(op.__qualname__.startswith("Transitions.suspend.") for op in ops)

        load = runtime.load_invocation
        resolved = False

        async def load_then_resolve(loaded_id: str):  # type: ignore[no-untyped-def]
            nonlocal resolved
            loaded = await load(loaded_id)
            if loaded_id == invocation_id and not resolved:
                resolved = True
                # The awakeable's result reaches the actor after its journal was read: the actor appends it
                # to the journal it is replacing, and that append commits (so the message leaves the outbox)
                # but tells the actor only once it works from the reloaded journal.
                disk.hold_when = lambda ops: any(op.__qualname__.startswith("Transitions.append.") for op in ops)
                await runtime.write(runtime.transitions.complete_awakeable(published["late"], b'"in time"'))
                with anyio.fail_after(5):
                    while not disk.holding.is_set():
                        await anyio.sleep(0.01)
                nursery.start_soon(release_soon)
            return loaded

        async def release_soon() -> None:
            await anyio.sleep(0.3)  # the actor has read its (now empty) outbox by then
            disk.release.set()

        runtime.load_invocation = load_then_resolve  # type: ignore[method-assign]
        with anyio.fail_after(10):
            assert await runtime.attach(invocation_id) == b'"in time"'
        assert disk.refused == 1 and resolved
        record = await runtime.get_record(invocation_id)
    assert record.retry_count <= 2, f"the invocation failed {record.retry_count} attempts"


async def test_a_write_refused_while_the_actor_reloads_is_reloaded_again_not_forgotten(tmp_path, monkeypatch) -> None:
    """Found by the disk-full soak (a cancelled saga `ready`, its callee's result left in its outbox, no attempt
    failing). While an actor reloads after a refused write, a result is delivered to the reloaded journal and its
    append is refused too. The attempt that follows must not start on that journal (it would wait for ever on a
    notification that will never be stored): the actor reloads again and takes the result from the outbox."""
    from durio.actors.invocation import InvocationActor

    published.clear()
    async with open_runtime([waiter], tmp_path / "data", RuntimeConfig(suspend_after_s=0.2)) as runtime:
        disk = RefusingDisk(runtime.store.backend)
        invocation_id = await invoke(runtime, "Waiter", "wait", "refused", send=True)

        async def published_its_awakeable() -> bool:
            return "refused" in published

        await wait_until(published_its_awakeable)
        redeliver = InvocationActor._redeliver_outbox
        refused_meanwhile = False

        async def refuse_a_delivery_then_redeliver(actor: InvocationActor) -> None:
            nonlocal refused_meanwhile
            if actor.id == invocation_id and not refused_meanwhile:
                refused_meanwhile = True
                disk.refuse_when = lambda ops: any(op.__qualname__.startswith("Transitions.append.") for op in ops)
                await runtime.write(runtime.transitions.complete_awakeable(published["refused"], b'"at last"'))
                with anyio.fail_after(5):  # the delivery's append, to the reloaded journal, is refused
                    while actor._write_error is None:
                        await anyio.sleep(0.01)
            await redeliver(actor)

        monkeypatch.setattr(InvocationActor, "_redeliver_outbox", refuse_a_delivery_then_redeliver)
        disk.refuse_when = lambda ops: any(op.__qualname__.startswith("Transitions.suspend.") for op in ops)
        with anyio.fail_after(10):
            assert await runtime.attach(invocation_id) == b'"at last"'
        assert refused_meanwhile and disk.refused == 2
