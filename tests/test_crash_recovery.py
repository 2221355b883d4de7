"""kill -9 of a real server process with invocations in flight, then a restart on the same LMDB files."""

from __future__ import annotations

import collections
import pathlib

import httpx
import anyio

from durio.journal import entries as e
from durio.storage.lmdb_store import LmdbStore
from tests.conftest import TEST_APPS, wait_until

STEPS_APP = TEST_APPS / "steps_app.py"


def durable_progress(data_dir: pathlib.Path) -> dict[str, set[str]]:
    """Read the files a killed server left: each invocation and the steps whose results are durable."""
    store = LmdbStore(data_dir, readonly=True)
    try:

        def scan(txn):  # type: ignore[no-untyped-def]
            progress = {}
            for record in txn.iter_invocations():
                journal = txn.journal(record.id)
                runs = {entry.completion_id: entry.name for entry in journal if isinstance(entry, e.Run)}
                progress[record.id] = {
                    runs[n.completion_id] for n in journal if isinstance(n, e.Completion) and n.completion_id in runs
                }
            return progress

        return store.read(scan)
    finally:
        store.close()


def executions(log_path: pathlib.Path) -> collections.Counter[tuple[str, str]]:
    if not log_path.exists():
        return collections.Counter()
    return collections.Counter(tuple(line.split(" ", 1)) for line in log_path.read_text().splitlines())  # type: ignore[misc]


async def test_kill_9_with_50_invocations_in_flight_loses_nothing_and_reruns_no_completed_step(server_process, tmp_path) -> None:
    steps_log = tmp_path / "steps.log"
    server = server_process(STEPS_APP, env={"STEPS_LOG": str(steps_log)})
    await server.start()
    keys = [f"order-{i}" for i in range(50)]

    async def call(client: httpx.AsyncClient, key: str, results: dict[str, httpx.Response]) -> None:
        try:
            results[key] = await client.post("/restate/call/Steps/run", json=150, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            pass  # the server died under this request

    first_answers: dict[str, httpx.Response] = {}
    async with server.client() as client:
        async with anyio.create_task_group() as nursery:
            for key in keys:
                nursery.start_soon(call, client, key, first_answers)
            # Kill once every invocation is accepted and some steps are done, but none has finished.
            await wait_until(lambda: _accepted_count_at_least(server, 50))
            await wait_until(lambda: _steps_logged_at_least(steps_log, 20))
            server.kill9()
    assert len(first_answers) < 50, "the kill came too late to interrupt anything"

    progress = durable_progress(server.data_dir)
    assert len(progress) == 50, "every invocation was accepted before the kill"
    done_before_kill = {(inv, step) for inv, steps in progress.items() for step in steps}
    assert any(len(steps) < 3 for steps in progress.values()), "some invocations were mid-way at the kill"

    await server.start()
    async with server.client(admin=True) as admin:
        for invocation_id in progress:
            await wait_until(lambda invocation_id=invocation_id: _completed(admin, invocation_id), timeout=60)

    counts = executions(steps_log)
    for invocation_id in progress:
        for step in ("pay", "add-Hulu", "add-Prime"):
            ran = counts[(invocation_id, step)]
            if (invocation_id, step) in done_before_kill:
                assert ran == 1, f"{step} of {invocation_id} was durable before the kill but ran {ran} times"
            else:
                assert 1 <= ran <= 2, f"{step} of {invocation_id} ran {ran} times"

    # The original requests, retried with their idempotency keys, get the stored results without re-running anything.
    async with server.client() as client:
        retries = {}
        async with anyio.create_task_group() as nursery:
            for key in keys:
                nursery.start_soon(call, client, key, retries)
    assert len(retries) == 50
    for key, response in retries.items():
        assert response.status_code == 200, response.text
        assert response.json() == ["pay-done", "add-Hulu-done", "add-Prime-done"]
        assert response.headers["x-restate-id"] in progress
    assert executions(steps_log) == counts, "an idempotent retry ran a step again"
    assert server.terminate() == 0


async def _accepted_count_at_least(server, count: int) -> bool:  # type: ignore[no-untyped-def]
    return len(durable_progress_live(server.data_dir)) >= count


def durable_progress_live(data_dir: pathlib.Path) -> list[str]:
    if not (data_dir / "data.mdb").exists():
        return []
    store = LmdbStore(data_dir, readonly=True)
    try:
        return store.read(lambda txn: [r.id for r in txn.iter_invocations()])
    finally:
        store.close()


async def _steps_logged_at_least(log_path: pathlib.Path, count: int) -> bool:
    return sum(executions(log_path).values()) >= count


async def _completed(admin: httpx.AsyncClient, invocation_id: str) -> bool:
    response = await admin.get(f"/invocations/{invocation_id}")
    return response.status_code == 200 and response.json()["status"] == "completed"


LEDGER_APP = TEST_APPS / "ledger_app.py"


async def test_kill_9_during_an_exclusive_handler_keeps_the_key_locked_and_the_queue_in_order(server_process) -> None:
    server = server_process(LEDGER_APP)
    await server.start()
    async with server.client() as client:
        held = await client.post("/restate/send/Ledger/acct/hold", json=2500)
        queued = [await client.post("/restate/send/Ledger/acct/append", json=f"item-{n}") for n in range(5)]
        assert all(r.status_code == 202 for r in [held, *queued])

        async def holding() -> bool:
            return (await client.get("/restate/call/Ledger/acct/entries")).json() == ["hold-start"]

        await wait_until(holding)
        server.kill9()

    await server.start()
    async with server.client() as client:
        # The key stays locked by the resumed handler: nothing queued runs before it ends.
        assert (await client.get("/restate/call/Ledger/acct/entries")).json() == ["hold-start"]
        for response in queued:
            assert (await client.get(f"/restate/output/{response.json()['invocationId']}")).status_code == 470
        finished = await client.get(f"/restate/attach/{held.json()['invocationId']}")
        assert finished.json() == ["hold-start", "hold-end"]
        lengths = [(await client.get(f"/restate/attach/{r.json()['invocationId']}")).json() for r in queued]
        final = (await client.get("/restate/call/Ledger/acct/entries")).json()
    assert lengths == [3, 4, 5, 6, 7]
    assert final == ["hold-start", "hold-end", "item-0", "item-1", "item-2", "item-3", "item-4"]
    assert server.terminate() == 0
