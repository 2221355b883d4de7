"""Several worker processes on one machine: partitions, ownership, forwarding, restarts, upgrades.

Real `durio serve --workers N` processes on loopback ports; every request goes over a fresh
connection, so the kernel spreads them over the workers (SO_REUSEPORT) and many land on a worker
that does not own what they are about. The services are the soak's (tests/apps/soak_app.py):
an unkeyed Orders.process calls a Counter object on another partition, sends to Audit and waits
for an awakeable that Payments.confirm resolves.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import tarfile
import time
import typing

import anyio
import anyio.abc
import httpx

from durio import ids
from durio.partitions import PartitionTable
from tests.conftest import ROOT, TEST_APPS, wait_until

SOAK_APP = TEST_APPS / "soak_app.py"
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
PARTITIONS = 8


def fresh_connections(url: str) -> httpx.AsyncClient:
    """A client that opens a new connection for every request: each may reach either worker."""
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60.0), limits=httpx.Limits(max_keepalive_connections=0))


def keys_owned_by(worker: int, workers: int, count: int, prefix: str = "k") -> list[str]:
    table = PartitionTable.for_worker(PARTITIONS, worker, workers)
    found = []
    n = 0
    while len(found) < count:
        key = f"{prefix}{n}"
        if table.of_key(ids.partition_key_of(key)) in table.owned:
            found.append(key)
        n += 1
    return found


def start_workers(server_process, tmp_path: pathlib.Path, workers: int = 2, name: str = "server"):  # type: ignore[no-untyped-def]
    return server_process(
        SOAK_APP,
        env={"SOAK_LOG": str(tmp_path / f"{name}-steps.log")},
        name=name,
        args=["--workers", str(workers), "--partitions", str(PARTITIONS)],
    )


async def cluster(admin_url: str) -> dict:
    async with fresh_connections(admin_url) as admin:
        response = await admin.get("/cluster")
        assert response.status_code == 200, response.text
        return response.json()


def worker_pids(view: dict) -> dict[int, int | None]:
    return {w["worker"]: w["pid"] for w in view["nodes"][0]["workers"]}


def is_dead(pid: int) -> bool:
    """Gone, or a zombie whose threads have all exited (until the last one has, its sockets are open)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            zombie = any(line.startswith("State:") and "Z" in line for line in status)
        return zombie and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


async def order(client: httpx.AsyncClient, order_id: str, counter: str, amount: int, sleep_ms: int = 20) -> httpx.Response:
    return await client.post(
        "/restate/call/Orders/process",
        headers={"idempotency-key": order_id},
        json={"id": order_id, "amount": amount, "counter": counter, "sleep_ms": sleep_ms},
    )


async def test_each_partition_has_one_owner_and_the_key_ranges_cover_the_key_space(server_process, tmp_path) -> None:
    server = start_workers(server_process, tmp_path)
    await server.start()
    view = await cluster(server.admin_url)
    workers = view["nodes"][0]["workers"]
    assert sorted(w["worker"] for w in workers) == [0, 1]
    pids = {w["pid"] for w in workers}
    assert len(pids) == 2 and server.process is not None and server.process.pid not in pids, "two workers, neither the parent"
    owned = [p for w in workers for p in w["partitions"]]
    assert sorted(owned) == list(range(PARTITIONS)), "every partition owned by exactly one worker"
    partitions = view["partitions"]
    assert [p["id"] for p in partitions] == list(range(PARTITIONS))
    assert partitions[0]["key_range"][0] == 0 and partitions[-1]["key_range"][1] == 2**64 - 1
    for before, after in zip(partitions, partitions[1:]):
        assert after["key_range"][0] == before["key_range"][1] + 1
    for partition in partitions:
        owner = next(w for w in workers if partition["id"] in w["partitions"])
        assert partition["owner"] == owner["pid"] and partition["epoch"] == 1

    async with fresh_connections(server.admin_url) as admin:
        metrics = (await admin.get("/metrics")).text
    assert "durio_workers 2" in metrics


async def test_calls_across_workers_keep_counters_exact_and_every_worker_does_work(server_process, tmp_path) -> None:
    server = start_workers(server_process, tmp_path)
    await server.start()
    counters = keys_owned_by(0, 2, 2, "c") + keys_owned_by(1, 2, 2, "c")
    expected: dict[str, list[str]] = {counter: [] for counter in counters}
    async with fresh_connections(server.ingress_url) as client:
        async with anyio.create_task_group() as tasks:
            for n in range(24):
                counter = counters[n % len(counters)]
                expected[counter].append(f"o{n}")

                async def place(n: int = n, counter: str = counter) -> None:
                    response = await order(client, f"o{n}", counter, n)
                    assert response.status_code == 200, response.text
                    assert response.json()["confirmation"] == "confirmed"

                tasks.start_soon(place)
        for counter, refs in expected.items():
            peek = (await client.post(f"/restate/call/Counter/{counter}/peek")).json()
            assert sorted(peek["ledger"]) == sorted(refs), f"{counter}: each order's addition exactly once"
            assert peek["total"] == sum(int(ref[1:]) for ref in refs)
    async with fresh_connections(server.admin_url) as admin:
        metrics = (await admin.get("/metrics")).text
    created = {
        line.split('"')[1]: int(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("durio_worker_invocations_created_total{")
    }
    assert set(created) == {"0", "1"} and all(count > 0 for count in created.values()), created


async def test_operator_actions_and_awakeables_reach_the_owner_from_any_worker(server_process, tmp_path) -> None:
    server = start_workers(server_process, tmp_path)
    await server.start()
    async with fresh_connections(server.ingress_url) as client, fresh_connections(server.admin_url) as admin:
        booked = []
        for n in range(6):  # idempotency keys hash onto both workers' partitions
            response = await client.post(
                "/restate/send/Saga/book",
                headers={"idempotency-key": f"saga-{n}"},
                json={"id": f"b{n}", "wait": "awakeable", "refund_ms": 10, "after_ms": 10},
            )
            assert response.status_code == 202, response.text
            booked.append(response.json()["invocationId"])
        owners = {PartitionTable(PARTITIONS, frozenset()).of_id(i) % 2 for i in booked}
        assert owners == {0, 1}, "the sagas live on both workers"

        async def all_reserved() -> bool:
            log = tmp_path / "server-steps.log"
            return log.exists() and sum(1 for line in log.read_text().splitlines() if line.split()[1] == "reserve") == len(booked)

        await wait_until(all_reserved)
        for invocation_id in booked:
            response = await admin.patch(f"/invocations/{invocation_id}/cancel")
            assert response.status_code == 202, response.text
        for invocation_id in booked:
            attached = await client.get(f"/restate/invocation/{invocation_id}/attach")
            assert attached.status_code == 409, attached.text  # the saga compensated and re-raised the cancellation
        unknown = await admin.patch(f"/invocations/{ids.new_invocation_id('nobody')}/kill")
        assert unknown.status_code == 404
    log = (tmp_path / "server-steps.log").read_text()
    assert sum(1 for line in log.splitlines() if line.split()[1] == "compensated") == len(booked)


async def test_a_killed_worker_is_restarted_and_its_invocations_complete_while_the_other_keeps_serving(
    server_process, tmp_path
) -> None:
    server = start_workers(server_process, tmp_path)
    await server.start()
    before = await cluster(server.admin_url)
    pids = worker_pids(before)
    survivor_keys, victim_keys = keys_owned_by(0, 2, 2, "s"), keys_owned_by(1, 2, 2, "v")
    async with fresh_connections(server.ingress_url) as client:
        accepted = []
        for n in range(8):
            counter = (survivor_keys + victim_keys)[n % 4]
            response = await client.post(
                "/restate/send/Orders/process",
                headers={"idempotency-key": f"slow-{n}"},
                json={"id": f"slow-{n}", "amount": n, "counter": counter, "sleep_ms": 1500},
            )
            assert response.status_code == 202, response.text
            accepted.append(response.json()["invocationId"])
        os.kill(typing_pid(pids[1]), signal.SIGKILL)
        with anyio.fail_after(10):
            while not is_dead(typing_pid(pids[1])):
                await anyio.sleep(0.01)
        # The surviving worker's partitions answer at once, over any connection, while worker 1 restarts.
        for n in range(10):
            response = await client.post(f"/restate/call/Counter/{survivor_keys[n % 2]}/peek")
            assert response.status_code == 200, response.text

        async def restarted() -> bool:
            view = await cluster(server.admin_url)
            return worker_pids(view)[1] not in (None, pids[1])

        await wait_until(restarted)
        after = await cluster(server.admin_url)
        for partition in after["partitions"]:
            assert partition["epoch"] == (2 if partition["id"] % 2 == 1 else 1), partition
        for invocation_id in accepted:
            attached = await client.get(f"/restate/invocation/{invocation_id}/attach")
            assert attached.status_code == 200, attached.text
        for key in survivor_keys + victim_keys:
            peek = (await client.post(f"/restate/call/Counter/{key}/peek")).json()
            refs = [f"slow-{n}" for n in range(8) if (survivor_keys + victim_keys)[n % 4] == key]
            assert sorted(peek["ledger"]) == sorted(refs)
    assert "Traceback" not in server.output()


def typing_pid(pid: int | None) -> int:
    assert pid is not None
    return pid


async def test_sigterm_to_the_parent_stops_every_worker(server_process, tmp_path) -> None:
    server = start_workers(server_process, tmp_path)
    await server.start()
    pids = worker_pids(await cluster(server.admin_url))
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started < 15
    for pid in pids.values():
        assert is_dead(typing_pid(pid)), f"worker {pid} outlived its parent"


async def test_kill_9_of_the_parent_takes_the_workers_with_it_and_a_restart_resumes(server_process, tmp_path) -> None:
    server = start_workers(server_process, tmp_path)
    await server.start()
    pids = worker_pids(await cluster(server.admin_url))
    async with fresh_connections(server.ingress_url) as client:
        response = await client.post(
            "/restate/send/Orders/process",
            headers={"idempotency-key": "through-restart"},
            json={"id": "through-restart", "amount": 5, "counter": "c9", "sleep_ms": 1000},
        )
        invocation_id = response.json()["invocationId"]
    server.kill9()
    with anyio.fail_after(10):
        while not all(is_dead(typing_pid(pid)) for pid in pids.values()):
            await anyio.sleep(0.01)
    await server.start()
    async with fresh_connections(server.ingress_url) as client:
        attached = await client.get(f"/restate/invocation/{invocation_id}/attach")
        assert attached.status_code == 200, attached.text
        assert attached.json()["counter_total"] == 5


async def test_a_data_dir_written_before_partitions_opens_and_its_invocations_complete(server_process, tmp_path) -> None:
    """The fixture was written by durio 5f2953e (one process, no partitions): `durio serve tests/apps/soak_app.py`,
    then an Onboarding/ada workflow waiting for its promise, an Orders.process sleeping 30 s (idempotency key
    upgrade-order-1), a Saga.book waiting for an awakeable (upgrade-saga-1) and a completed Counter/c2.add of 7,
    then kill -9."""
    server = server_process(SOAK_APP, env={"SOAK_LOG": str(tmp_path / "steps.log")}, args=["--workers", "2"])
    server.data_dir.mkdir()
    with tarfile.open(FIXTURES / "data-dir-before-partitions.tar.gz") as archive:
        archive.extractall(server.data_dir, filter="data")
    await server.start()
    view = await cluster(server.admin_url)
    assert len(view["partitions"]) == 24, "an old data dir gets the default number of partitions"
    async with fresh_connections(server.ingress_url) as client, fresh_connections(server.admin_url) as admin:
        listing = (await admin.get("/invocations")).json()["invocations"]
        by_target = {i["target"]: i["id"] for i in listing}
        assert set(by_target) >= {"Onboarding/ada/run", "Orders/process", "Saga/book", "Counter/c2/add"}
        order_result = await client.get(f"/restate/invocation/{by_target['Orders/process']}/attach")
        assert order_result.status_code == 200 and order_result.json()["order"] == "o1", order_result.text
        assert (await client.post("/restate/call/Onboarding/ada/verify", json="ada@example.com")).status_code == 200
        workflow = await client.get("/restate/workflow/Onboarding/ada/attach")
        assert workflow.status_code == 200 and workflow.json() == "welcome Ada at ada@example.com", workflow.text
        assert (await admin.patch(f"/invocations/{by_target['Saga/book']}/cancel")).status_code == 202
        saga = await client.get(f"/restate/invocation/{by_target['Saga/book']}/attach")
        assert saga.status_code == 409, saga.text
        assert (await client.post("/restate/call/Counter/c2/peek")).json() == {"total": 7, "ledger": ["a1"]}
        assert (await client.post("/restate/call/Counter/c1/peek")).json() == {"total": 4, "ledger": ["o1"]}


async def test_one_worker_is_the_server_process_and_durio_cluster_prints_the_partitions(server_process, tmp_path) -> None:
    server = start_workers(server_process, tmp_path, workers=1)
    await server.start()
    view = await cluster(server.admin_url)
    assert server.process is not None
    assert [(w["worker"], w["pid"]) for w in view["nodes"][0]["workers"]] == [(0, server.process.pid)]
    assert [(p["id"], p["owner"], p["epoch"]) for p in view["partitions"]] == [
        (p, server.process.pid, 1) for p in range(PARTITIONS)
    ]
    printed = subprocess.run(
        [sys.executable, "-m", "durio.cli", "cluster", "--admin", server.admin_url.removeprefix("http://")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0, printed.stderr
    assert str(server.process.pid) in printed.stdout and "PARTITION" in printed.stdout
    assert len([line for line in printed.stdout.splitlines() if line.split()[:1] and line.split()[0].isdigit()]) >= PARTITIONS


async def test_keep_alive_connections_opened_at_once_are_spread_over_the_workers(server_process, tmp_path) -> None:
    """Every worker accepts from one shared socket; without the connection shares one worker took 56 of 64."""
    server = start_workers(server_process, tmp_path)
    await server.start()

    async def connection() -> None:
        async with httpx.AsyncClient(base_url=server.ingress_url, timeout=60) as client:  # one keep-alive connection
            for _ in range(3):
                response = await client.post("/restate/call/Audit/record", json="spread")
                assert response.status_code == 200, response.text

    async with anyio.create_task_group() as tasks:
        for _ in range(32):
            tasks.start_soon(connection)
    async with fresh_connections(server.admin_url) as admin:
        metrics = (await admin.get("/metrics")).text
    created = [
        int(line.split()[-1]) for line in metrics.splitlines() if line.startswith("durio_worker_invocations_created_total{")
    ]
    assert sum(created) == 96 and min(created) >= 96 // 5, f"invocations by worker: {created}"


async def test_regression_a_sibling_dying_while_frames_are_written_to_it_does_not_take_this_worker_down(tmp_path) -> None:
    """Found by the kill -9 soak (scripts/soak.py, 50 single-worker kills): a worker writing a frame to a sibling
    that had just been killed got a broken pipe, raised inside the link's task group, so it arrived wrapped in an
    ExceptionGroup, which the link's `except BrokenResourceError` did not catch: the surviving worker died with
    its sibling (exit status 1), and requests for its partitions were refused until the supervisor restarted it.

    The sibling here is a socket that accepts the link and stops reading (shutdown(SHUT_RD)): the next write
    fails with EPIPE while the link's reader has seen no end of stream yet, as when the sibling dies mid-write."""
    from durio.workers.peers import WorkerPeers, _FrameReader, socket_path

    peers = WorkerPeers(str(tmp_path), me=0, workers=2)
    connections = 0
    stopped_reading = anyio.Event()
    received: list[typing.Any] = []
    back = anyio.Event()

    async def sibling_dying_then_back(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            stream.extra(anyio.abc.SocketAttribute.raw_socket).shutdown(socket.SHUT_RD)
            stopped_reading.set()
            await anyio.sleep_forever()
        reader = _FrameReader(stream)
        assert await reader.read_raw() == b"", "a link opens with the (empty) secret of workers"
        received.append(await reader.read())
        back.set()
        await anyio.sleep_forever()

    sibling = await anyio.create_unix_listener(socket_path(str(tmp_path), 1))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sibling.serve, sibling_dying_then_back)
        await tasks.start(peers.run)
        with anyio.fail_after(10):
            await stopped_reading.wait()
        peers.tell(1, "messages_arrived", "x" * 4096)
        with anyio.fail_after(10):
            await back.wait()  # this worker lived on, linked to the sibling again, and sent what it could not send
        tasks.cancel_scope.cancel()
    assert received == [("tell", 0, "messages_arrived", ("x" * 4096,))]


async def test_regression_each_sibling_is_reached_over_one_connection(tmp_path) -> None:
    """Peers.run started a second link-keeping task for every sibling: two connections shared one link's queues
    and its connected/up flags, so a request could find the link down with its `connected` event already set
    and fail at once with 503 "worker 0 is not running" (the soak caught it while a worker restarted)."""
    from durio.workers.peers import WorkerPeers, socket_path

    peers = WorkerPeers(str(tmp_path), me=0, workers=2)
    connections = 0

    async def count(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        connections += 1
        await anyio.sleep_forever()

    sibling = await anyio.create_unix_listener(socket_path(str(tmp_path), 1))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sibling.serve, count)
        await tasks.start(peers.run)
        with anyio.fail_after(10):
            while connections == 0:
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # a second task would have connected by now
        tasks.cancel_scope.cancel()
    assert connections == 1


# A supervisor of two workers that only note their pids (a file each) and wait: no server, so restarts are instant.
NOTING_SUPERVISOR = """
import logging, os, sys, time
from durio.workers.supervisor import Supervisor
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

def run_worker(index):
    open(os.path.join(sys.argv[1], f"{time.monotonic():.6f}-w{index}-{os.getpid()}"), "w").close()
    time.sleep(60)
    return 0

sys.exit(Supervisor(2, run_worker).run())
"""


async def test_regression_a_worker_whose_restart_is_held_back_does_not_hold_back_its_siblings(tmp_path) -> None:
    """Found by the kill -9 soak: a worker that dies young is restarted after a growing delay, and the supervisor
    slept through that delay, so a sibling that died meanwhile stayed dead until it ended (5 s, both workers down).
    Here worker 1 is killed young four times (its restart is then held back 2 s) and worker 0 dies during the hold:
    worker 0 must be back first."""
    started = tmp_path / "started"
    started.mkdir()
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", NOTING_SUPERVISOR, str(started)], stderr=log, cwd=str(ROOT))

    def running() -> list[tuple[int, int]]:
        """(worker, pid) in the order they started."""
        return [(int(worker[1:]), int(pid)) for _, worker, pid in sorted(name.name.split("-") for name in started.iterdir())]

    async def replaced(worker: int, pid: int) -> int:
        with anyio.fail_after(10):
            while True:
                newest = [p for w, p in running() if w == worker][-1:]
                if newest and newest[0] != pid:
                    return newest[0]
                await anyio.sleep(0.01)

    def held_back(seconds: float) -> bool:
        return f"worker 1 was killed by SIGKILL; restarting it in {seconds:.1f} s" in log_path.read_text()

    try:
        worker_0 = await replaced(0, 0)
        worker_1 = await replaced(1, 0)
        for _ in range(3):  # held back 0.1, 0.5, 1.0 s
            os.kill(worker_1, signal.SIGKILL)
            worker_1 = await replaced(1, worker_1)
        os.kill(worker_1, signal.SIGKILL)
        with anyio.fail_after(10):
            while not held_back(2.0):
                await anyio.sleep(0.01)
        os.kill(worker_0, signal.SIGKILL)
        new_0 = await replaced(0, worker_0)
        new_1 = await replaced(1, worker_1)
        order = [pid for _, pid in running()]
        assert order.index(new_0) < order.index(new_1), "worker 0 waited for worker 1's held-back restart"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log_path.read_text()
