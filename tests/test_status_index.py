"""The status index: counts by status and newest-first listings that never read every record.

Real LMDB files in a tmp dir; the index is checked against a scan of the records themselves,
and the admin API's listing against the order the invocations were sent in.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import anyio

import durio as restate
from durio import ids
from durio.journal.entries import Target
from durio.storage import schema
from durio.storage.frames import pack_record
from durio.storage.lmdb_store import LmdbStore, StorageError
from durio.storage.records import STORED_STATUSES, InvocationRecord, Status
from durio.storage.txn import Txn
from tests.conftest import start_in_process, wait_until


def record(created_ms: int, status: Status = Status.READY) -> InvocationRecord:
    return InvocationRecord(
        id=ids.new_invocation_id(),
        target=Target("Svc", "run"),
        handler_kind=None,
        status=str(status),
        created_ms=created_ms,
        modified_ms=created_ms,
    )


def write(store: LmdbStore, fn) -> None:
    store.commit_batch([fn])


def read(store: LmdbStore, fn):
    return store.read(fn)


def scanned_counts(txn: Txn) -> dict[str, int]:
    counts = dict.fromkeys(STORED_STATUSES, 0)
    for r in txn.iter_invocations():
        counts[str(r.status)] += 1
    return counts


@pytest.fixture
def store(tmp_path):
    store = LmdbStore(tmp_path / "data", sync=False)
    yield store
    store.close()


def test_counts_follow_every_status_change_and_delete(store) -> None:
    rng = random.Random(7)
    records = [record(created_ms=1000 + n) for n in range(300)]
    write(store, lambda txn: [txn.put_invocation(r) for r in records])
    for _ in range(5):

        def shuffle(txn: Txn) -> None:
            for r in rng.sample(records, 120):
                stored = txn.get_invocation(r.id)
                if stored is None:
                    continue
                stored.status = rng.choice(STORED_STATUSES)
                txn.put_invocation(stored)
            for r in rng.sample(records, 10):
                txn.delete_invocation(r.id)

        write(store, shuffle)

    # A put without a get in the same transaction (the index must look the old status up itself).
    def blind_put(txn: Txn) -> None:
        for r in records[:50]:
            r.status = str(Status.PAUSED)
            if txn.get_invocation(r.id) is not None:
                fresh = Txn(txn._txn, txn._dbs)  # another op in the same batch has not seen it
                fresh.put_invocation(r)

    write(store, blind_put)
    counts = read(store, lambda txn: txn.count_by_status())
    assert counts == read(store, scanned_counts)
    assert sum(counts.values()) == read(store, lambda txn: txn.count_invocations())


def test_a_failed_op_leaves_the_index_as_it_was(store) -> None:
    kept = record(1, Status.SUSPENDED)
    write(store, lambda txn: txn.put_invocation(kept))

    def fails_midway(txn: Txn) -> None:
        moved = txn.get_invocation(kept.id)
        moved.status = str(Status.COMPLETED)
        txn.put_invocation(moved)
        raise RuntimeError("the op fails after its write")

    outcome = store.commit_batch([fails_midway])[0]
    assert "the op fails" in str(outcome.error)
    assert read(store, lambda txn: txn.count_by_status())["suspended"] == 1
    assert read(store, lambda txn: txn.count_by_status())["completed"] == 0


def test_pages_newest_first_across_statuses_match_a_sorted_scan(store) -> None:
    rng = random.Random(3)
    statuses = (Status.READY, Status.SUSPENDED, Status.COMPLETED, Status.PAUSED)
    records = [record(created_ms=rng.randrange(0, 50), status=rng.choice(statuses)) for _ in range(400)]
    write(store, lambda txn: [txn.put_invocation(r) for r in records])

    wanted = ("ready", "suspended", "completed")
    odd_handler = {r.id for r in records if rng.random() < 0.5}

    def accept(r: InvocationRecord) -> bool:
        return r.id in odd_handler

    expected = sorted(
        (r for r in records if str(r.status) in wanted and r.id in odd_handler),
        key=lambda r: (r.created_ms, ids.invocation_id_to_bytes(r.id)),
        reverse=True,
    )
    listed: list[str] = []
    start_at = None
    pages = 0
    while True:
        page, start_at = read(
            store, lambda txn: txn.invocations_by_status(wanted, newest_first=True, start_at=start_at, limit=17, accept=accept)
        )
        assert len(page) <= 17
        listed += [r.id for r in page]
        pages += 1
        if start_at is None:
            break
    assert listed == [r.id for r in expected]
    assert pages == len(expected) // 17 + 1


def test_oldest_first_is_the_recovery_order(store) -> None:
    records = [record(created_ms=n, status=Status.READY if n % 2 else Status.BACKING_OFF) for n in range(20, 0, -1)]
    write(store, lambda txn: [txn.put_invocation(r) for r in records])
    listed, rest = read(store, lambda txn: txn.invocations_by_status((Status.READY, Status.BACKING_OFF)))
    assert rest is None
    assert [r.created_ms for r in listed] == list(range(1, 21))


def test_a_store_from_before_the_index_is_indexed_when_opened(tmp_path) -> None:
    store = LmdbStore(tmp_path / "data", sync=False)
    records = [record(created_ms=n, status=STORED_STATUSES[n % len(STORED_STATUSES)]) for n in range(70)]
    with store._env.begin(write=True) as raw:  # write records the way a durio without the index did
        for r in records:
            raw.put(schema.id_key(r.id), pack_record(r), db=store._dbs[schema.INVOCATIONS])
        for db in schema.STATUS_INDEXES.values():
            raw.drop(store._dbs[db], delete=True)
        raw.delete(b"status_index", db=store._dbs[schema.META])
    store.close()

    with pytest.raises(StorageError, match="open it once with `durio serve`"):
        LmdbStore(tmp_path / "data", readonly=True)

    store = LmdbStore(tmp_path / "data", sync=False)
    try:
        counts = read(store, lambda txn: txn.count_by_status())
        assert counts == read(store, scanned_counts) and sum(counts.values()) == 70
    finally:
        store.close()


def test_a_listing_filtered_by_target_reads_only_the_records_it_shows(store, monkeypatch) -> None:
    wanted = [
        InvocationRecord(
            id=ids.new_invocation_id(),
            target=Target("Rare", "run", "k1"),
            handler_kind=None,
            status="suspended",
            created_ms=5000 + n,
            modified_ms=0,
        )
        for n in range(5)
    ]
    others = [record(created_ms=n, status=Status.SUSPENDED) for n in range(500)]
    write(store, lambda txn: [txn.put_invocation(r) for r in others + wanted])
    reads: list[str] = []
    real_get = Txn.get_invocation

    def counting_get(self: Txn, invocation_id: str) -> InvocationRecord | None:
        reads.append(invocation_id)
        return real_get(self, invocation_id)

    monkeypatch.setattr(Txn, "get_invocation", counting_get)
    listed, rest = read(
        store,
        lambda txn: txn.invocations_by_status(
            ("suspended",), newest_first=True, accept_target=lambda service, handler, key: service == "Rare"
        ),
    )
    assert [r.id for r in listed] == [r.id for r in reversed(wanted)] and rest is None
    assert sorted(reads) == sorted(r.id for r in wanted)


def test_an_index_without_targets_is_rebuilt_with_them_when_opened(tmp_path) -> None:
    store = LmdbStore(tmp_path / "data", sync=False)
    records = [record(created_ms=n) for n in range(30)]
    write(store, lambda txn: [txn.put_invocation(r) for r in records])
    with store._env.begin(write=True) as raw:  # the first version of the index held no targets
        cursor = raw.cursor(db=store._dbs[schema.STATUS_INDEXES["ready"]])
        for key in list(cursor.iternext(keys=True, values=False)):
            raw.put(key, b"", db=store._dbs[schema.STATUS_INDEXES["ready"]])
    write(store, lambda txn: txn.put_meta("status_index", 1))
    # Still listed and counted (their records are read instead), filters and all.
    listed, _ = read(store, lambda txn: txn.invocations_by_status(("ready",), accept_target=lambda *target: False))
    assert len(listed) == 30
    assert read(store, lambda txn: txn.count_by_status_and_target(("ready",), lambda service, *_: service == "Svc")) == 30
    assert read(store, lambda txn: txn.count_by_status_and_target(("ready",), lambda service, *_: service == "Nope")) == 0
    store.close()

    store = LmdbStore(tmp_path / "data", sync=False)
    try:
        listed, _ = read(store, lambda txn: txn.invocations_by_status(("ready",), accept_target=lambda *target: False))
        assert listed == []
        listed, _ = read(
            store,
            lambda txn: txn.invocations_by_status(
                ("ready",), accept_target=lambda service, handler, key: (service, handler, key) == ("Svc", "run", None)
            ),
        )
        assert len(listed) == 30
    finally:
        store.close()


def test_an_unreadable_record_is_skipped_not_fatal(store) -> None:
    good, bad = record(1), record(2)
    write(store, lambda txn: [txn.put_invocation(good), txn.put_invocation(bad)])
    with store._env.begin(write=True) as raw:
        raw.put(schema.id_key(bad.id), b"\xff not a frame", db=store._dbs[schema.INVOCATIONS])
    listed, _ = read(store, lambda txn: txn.invocations_by_status(("ready",), newest_first=True))
    assert [r.id for r in listed] == [good.id]
    # Deleting the unreadable record still works; its index entry cannot be named and stays, harmlessly.
    write(store, lambda txn: txn.delete_invocation(bad.id))
    listed, _ = read(store, lambda txn: txn.invocations_by_status(("ready",), newest_first=True))
    assert [r.id for r in listed] == [good.id]


# ------------------------------------------------------------ through the admin API


listed = restate.Service("Listed")
other = restate.Service("Other")


@listed.handler()
async def finish(ctx: restate.Context) -> str:
    return "done"


@listed.handler()
async def wait(ctx: restate.Context) -> str:
    _, value = ctx.awakeable(type_hint=str)
    return await value


@other.handler()
async def finish_too(ctx: restate.Context) -> str:
    return "done"


async def test_the_admin_listing_is_newest_first_per_status_and_filter(nursery, data_dir) -> None:
    server = await start_in_process(nursery, [listed, other], data_dir, suspend_after_s=0.0)
    sent: dict[str, list[str]] = {"finish": [], "wait": [], "finish_too": []}
    for round_ in range(12):
        for handler in ("finish", "wait") + (("finish_too",) if round_ % 3 == 0 else ()):
            service = "Other" if handler == "finish_too" else "Listed"
            response = await server.ingress.post(f"/restate/send/{service}/{handler}")
            sent[handler].append(response.json()["invocationId"])

    async def settled() -> bool:
        listing = (await server.admin.get("/invocations", params={"limit": "1000"})).json()["invocations"]
        return len(listing) == 28 and {i["status"] for i in listing} == {"completed", "suspended"}

    await wait_until(settled)

    suspended = (await server.admin.get("/invocations", params={"status": "suspended", "limit": "5"})).json()
    assert suspended["total"] == 12
    assert [i["id"] for i in suspended["invocations"]] == sent["wait"][::-1][:5]

    everything = (await server.admin.get("/invocations", params={"limit": "1000"})).json()["invocations"]
    created = [i["created_at"] for i in everything]
    assert created == sorted(created, reverse=True)

    mine = (await server.admin.get("/invocations", params={"service": "Other", "status": "completed"})).json()
    assert sorted(i["id"] for i in mine["invocations"]) == sorted(sent["finish_too"])
    assert mine["total"] == len(sent["finish_too"]), "the total counts the service filter too"
    by_handler = (await server.admin.get("/invocations", params={"handler": "finish", "limit": "3"})).json()
    assert [i["id"] for i in by_handler["invocations"]] == sent["finish"][::-1][:3]
    assert by_handler["total"] == len(sent["finish"])
    assert (await server.admin.get("/invocations", params={"status": "running"})).json()["invocations"] == []


live = restate.Service("Live")
release = {"busy": None}


@live.handler()
async def busy(ctx: restate.Context) -> str:
    async def hold() -> str:  # an async step runs on the loop: the actor stays "running" until it is released
        await release["busy"].wait()
        return "released"

    return await ctx.run_typed("hold", hold)


@live.handler(invocation_retry_policy=restate.InvocationRetryPolicy(initial_interval=timedelta(minutes=10)))
async def stuck(ctx: restate.Context) -> str:
    raise RuntimeError("fails, then waits ten minutes before the next attempt")


@live.handler()
async def nap(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(days=1))
    return "rested"


async def test_totals_for_live_statuses_count_only_what_shows_that_status(nursery, data_dir) -> None:
    """'running' is never stored (a live actor shows it over 'ready', 'suspended'...), and 'backing-off' is stored
    but may show as 'running' when an actor retries early: the totals count what the listing would show."""
    release["busy"] = anyio.Event()
    server = await start_in_process(nursery, [live], data_dir, suspend_after_s=0.0)
    sent = {
        name: (await server.ingress.post(f"/restate/send/Live/{name}")).json()["invocationId"]
        for name in ("busy", "stuck", "nap")
    }

    async def shown() -> dict[str, str]:
        listing = (await server.admin.get("/invocations", params={"limit": "100"})).json()["invocations"]
        return {i["id"]: i["status"] for i in listing}

    async def settled() -> bool:
        return await shown() == {sent["busy"]: "running", sent["stuck"]: "backing-off", sent["nap"]: "suspended"}

    await wait_until(settled)
    for status, expected in [
        ("running", [sent["busy"]]),
        ("backing-off", [sent["stuck"]]),
        ("suspended", [sent["nap"]]),
        ("ready", []),
        ("completed", []),
    ]:
        for service in (None, "Live"):
            params = {"status": status, **({"service": service} if service else {})}
            answer = (await server.admin.get("/invocations", params=params)).json()
            assert [i["id"] for i in answer["invocations"]] == expected, (params, answer)
            assert answer["total"] == len(expected), (params, answer)
    assert (await server.admin.get("/invocations", params={"limit": "0"})).json()["total"] == 3
    release["busy"].set()
    assert (await server.ingress.get(f"/restate/attach/{sent['busy']}")).json() == "released"
    answer = (await server.admin.get("/invocations", params={"status": "running"})).json()
    assert (answer["total"], answer["invocations"]) == (0, [])
