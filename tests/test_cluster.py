"""A node on PostgreSQL (durio.cluster): fenced batches, write sets, restore, and PostgreSQL going away.

Every test runs against a real, throwaway PostgreSQL (tests/postgres.py) and real LMDB files; the
server tests run `durio serve --cluster` as real processes.
"""

from __future__ import annotations

import pathlib
import shutil
import time
import typing

import anyio
import httpx
import pytest

from durio.cluster.durability import LOCK_TIMEOUT_S, STATEMENT_TIMEOUT_S, Fenced, PostgresDurability, connect
from durio.cluster.node import SEQUENCE_BLOCK_BITS, ClusterOptions, _open_cluster, ready_local_store
from durio.cluster.schema import DB_NUMBERS, GLOBAL_PARTITION, SCHEMA_VERSION, migrate
from durio.storage import StorageError
from durio.storage import schema as s
from durio.storage.lmdb_store import LmdbStore, OpFailed
from durio.storage.recording import RECEIPT_META, SHIPPED_DATABASES
from durio.storage.txn import Txn
from tests.conftest import TEST_APPS, ServerProcess
from tests.postgres import CuttingProxy, Postgres, postgres, postgres_server  # noqa: F401  (the fixtures)

LEDGER_APP = TEST_APPS / "ledger_app.py"
APPENDS = 25  # per key, in the outage test


def psycopg_connect(dsn: str) -> typing.Any:
    import psycopg

    return psycopg.connect(dsn)


def open_node(postgres: Postgres, name: str, lease_s: float = 10.0, partitions: int = 4) -> PostgresDurability:  # noqa: F811
    durability = _open_cluster(ClusterOptions(postgres.dsn, name, lease_s, partitions))
    return durability


def every_partition(durability: PostgresDurability) -> set[int]:
    return {GLOBAL_PARTITION, *range(durability.partitions)}


def stored_rows(postgres: Postgres, db: bytes) -> dict[bytes, bytes]:  # noqa: F811
    return {
        bytes(key): bytes(value) for key, value in postgres.sql("SELECT key, value FROM durio_kv WHERE db = %s", DB_NUMBERS[db])
    }


def set_state(service: str, key: str, name: str, value: bytes) -> typing.Callable[[Txn], None]:
    return lambda txn: txn.set_state(service, key, name, value)


def test_every_database_the_store_ships_has_a_number_in_postgresql() -> None:
    assert set(DB_NUMBERS) - set(SHIPPED_DATABASES) == {s.META}, "meta is each store's own (its number is retired)"
    assert set(SHIPPED_DATABASES) <= set(DB_NUMBERS)
    assert len(set(DB_NUMBERS.values())) == len(DB_NUMBERS)


def test_the_schema_is_created_once_and_carries_its_version(postgres: Postgres) -> None:  # noqa: F811
    connection = connect(postgres.dsn)
    try:
        assert migrate(connection) == 0
        assert migrate(connection) == SCHEMA_VERSION  # the second run finds it current and changes nothing
    finally:
        connection.close()
    assert postgres.sql("SELECT version FROM durio_schema") == [(SCHEMA_VERSION,)]
    node = open_node(postgres, "a", partitions=4)
    assert node.partitions == 4
    assert open_node(postgres, "b", partitions=8).partitions == 4  # fixed when the cluster was created
    assert [pid for (pid,) in postgres.sql("SELECT pid FROM durio_partitions ORDER BY pid")] == [-1, 0, 1, 2, 3]


def test_an_existing_store_seeds_an_empty_cluster_in_statements_of_a_bounded_size(
    postgres: Postgres,  # noqa: F811
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large store seeds PostgreSQL in statements of ROWS_PER_STATEMENT rows each (so none runs into the statement
    timeout): every row arrives, here 25 rows in statements of 4 (six full ones and a remainder)."""
    import durio.cluster.durability as durability_module

    existing = LmdbStore(tmp_path / "data")
    try:
        existing.commit_batch([set_state("Cart", f"user-{i}", "items", f"item-{i}".encode()) for i in range(25)])
    finally:
        existing.close()
    monkeypatch.setattr(durability_module, "ROWS_PER_STATEMENT", 4)
    node = open_node(postgres, "a")
    node.acquire(every_partition(node))
    assert "seeded PostgreSQL with the local store's" in ready_local_store(node, str(tmp_path / "data"))[0]
    assert {key: value for key, value in stored_rows(postgres, s.STATE).items()} == {
        s.state_key("Cart", f"user-{i}", "items"): f"item-{i}".encode() for i in range(25)
    }


def test_a_batch_ships_exactly_what_it_commits_locally(postgres: Postgres, tmp_path: pathlib.Path) -> None:  # noqa: F811
    node = open_node(postgres, "a")
    assert node.acquire(every_partition(node)) == set()
    assert "seeded" in ready_local_store(node, str(tmp_path / "data"))[0]  # as a node starts: the store's first rows
    store = LmdbStore(tmp_path / "data")
    store.durability = node
    batches_before = node.statistics.batches
    try:

        def failing(txn: Txn) -> None:
            txn.set_state("Cart", "bob", "items", b"lost")
            raise ValueError("this op fails")

        outcomes = store.commit_batch(
            [
                set_state("Cart", "alice", "items", b"one"),
                set_state("Cart", "alice", "total", b"1"),
                failing,
                set_state("Cart", "alice", "items", b"two"),  # coalesced: only the last value travels
                lambda txn: txn.clear_all_state("Cart", "carol"),
            ]
        )
        assert isinstance(outcomes[2], OpFailed)
        store.commit_batch([lambda txn: txn.clear_state("Cart", "alice", "total"), set_state("Cart", "carol", "n", b"3")])
        store.commit_batch([lambda txn: txn.clear_all_state("Cart", "carol")])
        assert store.read(lambda txn: list(txn.iter_state())) == [("Cart", "alice", "items", b"two")]
        assert stored_rows(postgres, s.STATE) == {s.state_key("Cart", "alice", "items"): b"two"}
        assert node.statistics.batches == batches_before + 3
        # Every shipped row is in PostgreSQL with the bytes LMDB holds, the receipt aside.
        shipped = {(DB_NUMBERS[db], key): value for db, key, value in store.shipped_rows()}
        in_postgres = {(db, bytes(key)): bytes(value) for db, key, value in postgres.sql("SELECT db, key, value FROM durio_kv")}
        assert shipped == in_postgres
    finally:
        store.close()


def test_a_deposed_owners_batch_is_refused_whole_and_nothing_of_it_is_visible(postgres: Postgres, tmp_path: pathlib.Path) -> None:  # noqa: F811
    old = open_node(postgres, "old")
    assert old.acquire(every_partition(old)) == set()
    new = open_node(postgres, "new")
    assert new.acquire(every_partition(new)) == every_partition(new)  # leased by "old": nothing taken
    store = LmdbStore(tmp_path / "old-data")
    store.durability = old
    try:
        store.commit_batch([set_state("Cart", "alice", "items", b"before")])
        # "old" pauses past its lease (its leases expire on the database's clock), and "new" takes over.
        postgres.sql("UPDATE durio_partitions SET expires_at = now() - interval '1 second'")
        assert new.acquire(every_partition(new)) == set()
        epochs = dict(postgres.sql("SELECT pid, epoch FROM durio_partitions"))
        assert epochs == {pid: 2 for pid in every_partition(new)}

        with pytest.raises(Fenced):  # a StorageError: the ingress answers 503
            store.commit_batch([set_state("Cart", "alice", "items", b"zombie"), set_state("Cart", "dave", "items", b"zombie")])
        assert old.statistics.fenced == 1
        assert stored_rows(postgres, s.STATE) == {s.state_key("Cart", "alice", "items"): b"before"}
        assert store.read(lambda txn: txn.get_state("Cart", "dave", "items")) is None  # the LMDB commit was aborted
        assert store.read(lambda txn: txn.get_state("Cart", "alice", "items")) == b"before"
        # It stays deposed: the next batch is refused before it is sent, and counted too.
        with pytest.raises(StorageError):
            store.commit_batch([set_state("Cart", "erin", "items", b"zombie")])
        assert old.statistics.fenced == 2
        assert b"zombie" not in {value for (value,) in postgres.sql("SELECT value FROM durio_kv")}
        assert new.renew() == set() and old.renew() == every_partition(old) - set()  # only the new owner renews
    finally:
        store.close()


def test_an_empty_data_directory_is_loaded_from_postgresql(postgres: Postgres, tmp_path: pathlib.Path) -> None:  # noqa: F811
    node = open_node(postgres, "a")
    node.acquire(every_partition(node))
    first = tmp_path / "first"
    assert "seeded" in ready_local_store(node, str(first))[0]
    store = LmdbStore(first)
    store.durability = node
    try:
        store.commit_batch([set_state("Cart", "alice", "items", b"kept"), lambda txn: txn.put_meta("sequence", 41)])
    finally:
        store.close()
    assert "reused" in ready_local_store(node, str(first))[0]
    shutil.rmtree(first)
    assert "loaded" in ready_local_store(node, str(first))[0]
    store = LmdbStore(first)
    try:
        assert store.read(lambda txn: txn.get_state("Cart", "alice", "items")) == b"kept"
        # Sequence numbers come from a block of the cluster's that no incarnation had before: past every one used.
        assert store.read(lambda txn: txn.get_meta("sequence")) >= 3 << SEQUENCE_BLOCK_BITS > 41
        assert store.read(lambda txn: txn.get_meta("partitions")) == 4  # the cluster's, recorded through PostgreSQL
        assert store.read(lambda txn: txn.get_meta(RECEIPT_META)) == node.receipt()
    finally:
        store.close()


# ------------------------------------------------------------ nodes as real processes


def cluster_server(
    server_process: typing.Callable[..., ServerProcess],
    postgres: Postgres,
    name: str,  # noqa: F811
    lease_s: float = 3.0,
) -> ServerProcess:
    return server_process(
        LEDGER_APP,
        name=name,
        args=["--cluster", postgres.dsn, "--node-name", name, "--cluster-lease", str(lease_s), "--partitions", "4"],
    )


async def test_a_node_whose_data_directory_was_deleted_rebuilds_it_and_finishes_its_work(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess]
) -> None:  # noqa: F811
    server = cluster_server(server_process, postgres, "node-a")
    await server.start()
    sleeping = []
    async with server.client() as client:
        for i in range(4):
            assert (await client.post(f"/Ledger/k{i}/append", json=f"item-{i}")).status_code == 200
            response = await client.post(f"/Ledger/k{i}/hold/send", json=1500)
            assert response.status_code == 202
            sleeping.append(response.json()["invocationId"])
    server.kill9()
    shutil.rmtree(server.data_dir)
    await server.start()
    assert "loaded the local store from PostgreSQL" in server.new_output()
    async with server.client() as client:
        for i, invocation_id in enumerate(sleeping):
            response = await client.get(f"/restate/attach/{invocation_id}")
            assert response.status_code == 200, response.text
            assert response.json() == [f"item-{i}", "hold-start", "hold-end"]
    server.terminate()


async def test_postgresql_stopped_under_load_refuses_requests_then_the_node_recovers_and_loses_nothing(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess]
) -> None:  # noqa: F811
    server = cluster_server(server_process, postgres, "node-a")
    await server.start()
    acknowledged: dict[str, int] = {}
    outage = anyio.Event()
    keys = [f"k{i}" for i in range(4)]

    async def append_until_acknowledged(client: httpx.AsyncClient, key: str, item: str) -> None:
        while True:
            try:
                response = await client.post(f"/Ledger/{key}/append", json=item, headers={"idempotency-key": item})
            except httpx.TransportError:
                await anyio.sleep(0.2)
                continue
            if response.status_code == 200:
                acknowledged[item] = response.json()
                return
            assert response.status_code == 503, response.text
            assert response.headers.get("retry-after") == "1"
            await anyio.sleep(0.2)

    async def load(client: httpx.AsyncClient, key: str) -> None:
        for n in range(APPENDS):
            await append_until_acknowledged(client, key, f"{key}-{n}")
            if n == 10 and key == keys[0]:
                outage.set()

    async with server.client() as client, anyio.create_task_group() as tasks:
        for key in keys:
            tasks.start_soon(load, client, key)
        await outage.wait()
        await anyio.to_thread.run_sync(postgres.stop)
        down_since = time.monotonic()
        # The load's requests may all be waiting on invocations that cannot finish now; a new one is refused.
        response = await client.post("/Ledger/probe/append", json="probe", headers={"idempotency-key": "probe"})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        await anyio.sleep(max(0.0, 3 - (time.monotonic() - down_since)))
        assert server.process is not None and server.process.poll() is None, "the node must outlive PostgreSQL's outage"
        await anyio.to_thread.run_sync(postgres.start)
        await append_until_acknowledged(client, "probe", "probe")
    async with server.client() as client:
        for key in keys:
            entries = (await client.post(f"/Ledger/{key}/entries", json=None)).json()
            assert entries == [f"{key}-{n}" for n in range(APPENDS)]  # every acknowledged append once, in order
        assert (await client.post("/Ledger/probe/entries", json=None)).json() == ["probe"]  # refused, then taken once
    server.kill9()
    shutil.rmtree(server.data_dir)  # and PostgreSQL holds all of it
    await server.start()
    async with server.client() as client:
        for key in keys:
            assert (await client.post(f"/Ledger/{key}/entries", json=None)).json() == [f"{key}-{n}" for n in range(APPENDS)]
    server.terminate()


async def test_a_node_started_without_postgresql_waits_for_it(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess]
) -> None:  # noqa: F811
    postgres.stop()
    server = cluster_server(server_process, postgres, "node-a")
    starting = anyio.Event()

    async def start() -> None:
        starting.set()
        await server.start(timeout=60)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(start)
        await starting.wait()
        deadline = time.monotonic() + 20
        while "cannot be reached" not in server.output() and time.monotonic() < deadline:
            await anyio.sleep(0.1)
        assert "retrying in" in server.output()
        assert server.process is not None and server.process.poll() is None
        await anyio.to_thread.run_sync(postgres.start)
    async with server.client() as client:
        assert (await client.post("/Ledger/k/append", json="x")).json() == 1
    server.terminate()


async def test_a_node_whose_partitions_were_taken_over_refuses_every_write_and_counts_them(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess]
) -> None:  # noqa: F811
    server = cluster_server(server_process, postgres, "node-a")
    await server.start()
    async with server.client() as client:
        assert (await client.post("/Ledger/k/append", json="before")).json() == 1
        # Another node takes every partition over (what `acquire` does once a lease has expired).
        postgres.sql(
            "UPDATE durio_partitions SET epoch = epoch + 1, owner = 'node-b@1', expires_at = now() + interval '1 minute'"
        )
        for _ in range(2):
            response = await client.post("/Ledger/k/append", json="zombie")
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
    async with server.client(admin=True) as admin:
        metrics = (await admin.get("/metrics")).text
    refused = [line for line in metrics.splitlines() if line.startswith('durio_cluster_refused_batches_total{reason="fenced"}')]
    assert refused and float(refused[0].split()[-1]) >= 2
    assert not any(b"zombie" in bytes(value) for (value,) in postgres.sql("SELECT value FROM durio_kv"))
    assert any(b"before" in bytes(value) for (value,) in postgres.sql("SELECT value FROM durio_kv"))
    assert "were taken over by another node" in server.output() or "newer owner" in server.output()
    server.kill9()


# The writer's connection waits for a lock at most half a lease (durio.cluster.durability), 3 s in cluster_server.
WRITER_LOCK_WAIT_S = 3.0 / 2


async def test_a_batch_blocked_on_a_lock_gives_up_within_its_lock_wait_and_the_node_goes_on(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess]
) -> None:  # noqa: F811
    server = cluster_server(server_process, postgres, "node-a")
    await server.start()
    async with server.client() as client:
        assert (await client.post("/Ledger/k/append", json="before", headers={"idempotency-key": "before"})).json() == 1
        # Someone else's transaction holds a lock every batch needs (an operator's ALTER TABLE, a VACUUM FULL).
        holder = await anyio.to_thread.run_sync(psycopg_connect, postgres.dsn)
        try:
            await anyio.to_thread.run_sync(holder.execute, "LOCK TABLE durio_kv IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            response = await client.post(
                "/Ledger/k/append", json="blocked", headers={"idempotency-key": "blocked"}, timeout=WRITER_LOCK_WAIT_S + 15
            )  # without a lock timeout it waits forever
            waited = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert WRITER_LOCK_WAIT_S - 0.5 <= waited < WRITER_LOCK_WAIT_S + 5, waited
            assert server.process is not None and server.process.poll() is None
        finally:
            await anyio.to_thread.run_sync(holder.rollback)  # the lock goes
            await anyio.to_thread.run_sync(holder.close)
        assert "lock timeout" in server.output()
        # The same request again (its idempotency key) is taken once; nothing of the refused batch was kept.
        deadline = time.monotonic() + 20
        while (
            response := await client.post("/Ledger/k/append", json="blocked", headers={"idempotency-key": "blocked"})
        ).status_code == 503:
            assert time.monotonic() < deadline, "the node did not take writes again after the lock went"
            await anyio.sleep(0.2)
        assert response.status_code == 200 and response.json() == 2, response.text
        assert (await client.post("/Ledger/k/append", json="after")).json() == 3
        assert (await client.post("/Ledger/k/entries", json=None)).json() == ["before", "blocked", "after"]
    server.kill9()
    shutil.rmtree(server.data_dir)  # PostgreSQL holds the same
    await server.start()
    async with server.client() as client:
        assert (await client.post("/Ledger/k/entries", json=None)).json() == ["before", "blocked", "after"]
    server.terminate()


def test_the_timeouts_are_set_unless_the_connection_the_role_or_the_database_chose_its_own(postgres: Postgres) -> None:  # noqa: F811
    def settings(dsn: str) -> tuple[str, str]:
        connection = connect(dsn)
        try:
            row = connection.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')").fetchone()
            assert row is not None
            return row
        finally:
            connection.close()

    ours = (f"{STATEMENT_TIMEOUT_S:g}s", f"{LOCK_TIMEOUT_S * 1000:g}ms")
    assert settings(postgres.dsn) == ours
    assert settings(postgres.dsn + "?options=-c%20statement_timeout%3D60s") == ("1min", ours[1])
    postgres.sql(f"ALTER DATABASE \"{postgres.dsn.rsplit('/', 1)[1]}\" SET lock_timeout = '7s'")
    assert settings(postgres.dsn) == (ours[0], "7s")


@pytest.mark.parametrize("cut", ["before_answer", "before_request"])
def test_a_batch_whose_commit_went_unanswered_is_found_out_before_the_next_one(
    postgres: Postgres, tmp_path: pathlib.Path, cut: str
) -> None:  # noqa: F811
    proxy = CuttingProxy(postgres.port)
    node = _open_cluster(ClusterOptions(proxy.dsn(postgres), "a", 10.0, 4))
    node.acquire(every_partition(node))
    ready_local_store(node, str(tmp_path / "data"))
    store = LmdbStore(tmp_path / "data")
    store.durability = node
    try:
        store.commit_batch([set_state("Cart", "alice", "items", b"before")])
        getattr(proxy, f"cut_{cut}")()
        with pytest.raises(StorageError):
            store.commit_batch([set_state("Cart", "bob", "items", b"unanswered")])
        assert store.read(lambda txn: txn.get_state("Cart", "bob", "items")) is None  # never acknowledged here
        landed = s.state_key("Cart", "bob", "items") in stored_rows(postgres, s.STATE)
        assert landed == (cut == "before_answer")

        store.commit_batch([set_state("Cart", "carol", "items", b"after")])
        # The local store holds exactly what PostgreSQL holds: the unanswered batch too, if it landed.
        assert node.statistics.caught_up == (1 if landed else 0)
        assert (store.read(lambda txn: txn.get_state("Cart", "bob", "items")) == b"unanswered") == landed
        shipped = {(DB_NUMBERS[db], key): value for db, key, value in store.shipped_rows()}
        in_postgres = {(db, bytes(key)): bytes(value) for db, key, value in postgres.sql("SELECT db, key, value FROM durio_kv")}
        assert shipped == in_postgres
        assert store.read(lambda txn: txn.get_meta(RECEIPT_META)) == node.receipt()
    finally:
        store.close()
        node.close()
        proxy.close()
