"""Several nodes of a cluster on one real PostgreSQL: real `durio serve --cluster` processes on loopback ports.

Under mixed load (calls across partitions and nodes, object state on hot keys, sleeps, awakeables resolved by
a handler on another partition, delayed sends, idempotent retries, workflows whose promise is resolved and
whose result is read through other nodes than the one that started them), nodes are killed with kill -9 or
paused past their lease with SIGSTOP. Every request is retried (same Idempotency-Key, any live node) until
it is answered, so every one is acknowledged in the end; the checks then say nothing acknowledged was lost
or doubled, and counters are exact.
"""

from __future__ import annotations

import pathlib
import random
import shutil
import signal
import time
import typing

import anyio
import httpx

from tests.conftest import TEST_APPS, ServerProcess, free_port
from tests.postgres import Postgres, postgres, postgres_server  # noqa: F401  (the fixtures)
from tests.remote_peers import hypercorn_deployment

SOAK_APP = TEST_APPS / "soak_app.py"
LEASE_S = 2.0
PARTITIONS = 8
HOT_KEYS = [f"hot{i}" for i in range(3)]
ORDER_COUNTERS = [f"orders{i}" for i in range(3)]


class Node:
    def __init__(self, server: ServerProcess, name: str) -> None:
        self.server = server
        self.name = name
        self.up = False

    async def start(self) -> None:
        await self.server.start(timeout=60)
        self.up = True

    def kill9(self) -> None:
        self.up = False
        self.server.kill9()


def make_nodes(
    server_process: typing.Callable[..., ServerProcess],
    postgres: Postgres,
    tmp_path: pathlib.Path,  # noqa: F811
    count: int,
    app: pathlib.Path | None = SOAK_APP,
) -> list[Node]:
    nodes = []
    for i in range(count):
        name = f"node-{'abc'[i]}"
        server = server_process(
            app,
            name=name,
            env={"SOAK_LOG": str(tmp_path / f"{name}-steps.log")},
            args=[
                "--cluster",
                postgres.dsn,
                "--node-name",
                name,
                "--cluster-lease",
                str(LEASE_S),
                "--partitions",
                str(PARTITIONS),
                # The first node says where its peers reach it; the others listen on a free port of their own.
                *(["--advertise-url", f"http://127.0.0.1:{free_port()}"] if i == 0 else []),
            ],
        )
        # Fixed ports: a node restarted after kill -9 is found where it was.
        server.ingress_bind = f"127.0.0.1:{free_port()}"
        server.admin_bind = f"127.0.0.1:{free_port()}"
        nodes.append(Node(server, name))
    return nodes


async def start_nodes(
    server_process: typing.Callable[..., ServerProcess],
    postgres: Postgres,
    tmp_path: pathlib.Path,  # noqa: F811
    count: int,
    app: pathlib.Path | None = SOAK_APP,
) -> list[Node]:
    """`count` nodes started, once they share the partitions with no hand-over pending."""
    nodes = make_nodes(server_process, postgres, tmp_path, count, app)
    for node in nodes:
        await node.start()
    await wait_until_owned(nodes[0], {node.name for node in nodes}, timeout=30)
    return nodes


async def cluster_of(node: Node) -> dict[str, typing.Any]:
    async with node.server.client(admin=True) as admin:
        response = await admin.get("/cluster")
        assert response.status_code == 200, response.text
        return typing.cast(dict[str, typing.Any], response.json())


async def wait_until_owned(observer: Node, owners: set[str], timeout: float) -> float:
    """Seconds until every partition is owned by one of `owners`, none holding more than its fair share (so no
    hand-over is pending), as `observer` sees the leases."""
    started = time.monotonic()
    share = -(-PARTITIONS // len(owners))
    with anyio.fail_after(timeout):
        while True:
            try:
                view = await cluster_of(observer)
                held = [p["owner"] for p in view["partitions"]]
                if (
                    len(held) == PARTITIONS
                    and all(owner in owners for owner in held)
                    and all(held.count(owner) <= share for owner in owners)
                ):
                    return time.monotonic() - started
            except (httpx.HTTPError, AssertionError):
                pass
            await anyio.sleep(0.1)


async def admin_answered(client: httpx.AsyncClient, method: str, path: str, **kwargs: typing.Any) -> httpx.Response:
    """A request, retried while the node answers 503 (its partitions are moving), as a client would."""
    with anyio.fail_after(30):
        while True:
            response = await client.request(method, path, **kwargs)
            if response.status_code != 503:
                return response
            assert response.headers.get("retry-after") == "1", response.text
            await anyio.sleep(0.2)


class Load:
    """Clients that retry every request on any live node until it is answered, and remember what was acknowledged."""

    def __init__(self, nodes: list[Node], seed: int) -> None:
        self.nodes = nodes
        self.rng = random.Random(seed)
        self.added: dict[str, list[str]] = {key: [] for key in HOT_KEYS}
        self.orders: dict[str, list[str]] = {key: [] for key in ORDER_COUNTERS}
        self.workflows: dict[str, str] = {}
        self.retries = 0
        self.counter = 0
        self.stop = anyio.Event()

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def live(self) -> Node:
        return self.rng.choice([node for node in self.nodes if node.up])

    async def answered(
        self, method: str, path: str, expected: int = 200, avoid: Node | None = None, **kwargs: typing.Any
    ) -> httpx.Response:
        with anyio.fail_after(90):
            while True:
                candidates = [node for node in self.nodes if node.up and node is not avoid] or [self.live()]
                node = self.rng.choice(candidates)
                try:
                    async with httpx.AsyncClient(base_url=node.server.ingress_url, timeout=30.0) as client:
                        response = await client.request(method, path, **kwargs)
                    if response.status_code == expected:
                        return response
                    assert response.status_code >= 500, f"{method} {path} on {node.name}: {response.status_code} {response.text}"
                except httpx.HTTPError:
                    pass
                self.retries += 1
                await anyio.sleep(0.2)

    async def add(self) -> None:
        key, ref = self.rng.choice(HOT_KEYS), self.next_id("add-")
        await self.answered("POST", f"/Counter/{key}/add", json={"ref": ref, "amount": 1}, headers={"idempotency-key": ref})
        self.added[key].append(ref)

    async def order(self) -> None:
        order_id, counter = self.next_id("order-"), self.rng.choice(ORDER_COUNTERS)
        response = await self.answered(
            "POST",
            "/Orders/process",
            headers={"idempotency-key": order_id},
            json={"id": order_id, "amount": self.rng.randint(1, 5), "counter": counter, "sleep_ms": 50},
        )
        answer = response.json()
        assert answer["order"] == order_id and answer["confirmation"] == "confirmed", answer
        self.orders[counter].append(order_id)

    async def workflow(self) -> None:
        workflow_id = self.next_id("wf-")
        first = self.live()
        await self.answered("POST", f"/Onboarding/{workflow_id}/run/send", expected=202, json=workflow_id)
        # The promise is resolved, and the result read, through nodes other than the one that started it.
        await self.answered(
            "POST",
            f"/Onboarding/{workflow_id}/verify",
            avoid=first,
            json=f"{workflow_id}@example.com",
            headers={"idempotency-key": f"verify-{workflow_id}"},
        )
        response = await self.answered("GET", f"/restate/workflow/Onboarding/{workflow_id}/attach", avoid=first)
        self.workflows[workflow_id] = response.json()

    async def client(self) -> None:
        while not self.stop.is_set():
            await self.rng.choice([self.add, self.add, self.order, self.workflow])()


async def check_nothing_lost_or_doubled(load: Load, observer: Node) -> None:
    for counters, acknowledged in ((HOT_KEYS, load.added), (ORDER_COUNTERS, load.orders)):
        for key in counters:
            response = await load.answered("POST", f"/Counter/{key}/peek", json=None)
            ledger = response.json()["ledger"]
            doubled = sorted({ref for ref in ledger if ledger.count(ref) > 1})
            lost = sorted(set(acknowledged[key]) - set(ledger))
            assert not doubled, f"{key}: applied twice: {doubled}"
            assert not lost, f"{key}: acknowledged but lost: {lost}"
            assert len(ledger) == len(acknowledged[key]), (
                f"{key}: {len(ledger)} in the ledger, {len(acknowledged[key])} acknowledged"
            )
            if counters is HOT_KEYS:
                assert response.json()["total"] == len(acknowledged[key]), "the counter is exact"
    for workflow_id, result in load.workflows.items():
        assert result == f"welcome {workflow_id} at {workflow_id}@example.com", result


async def check_every_node_answers_for_the_cluster(nodes: list[Node]) -> None:
    """The admin API of any node shows the same state, listing and invocation, wherever their partitions are."""
    answers = []
    for node in nodes:
        async with node.server.client(admin=True) as admin:
            states = [(await admin_answered(admin, "GET", f"/state/Counter/{key}")).json() for key in HOT_KEYS]
            listing = (await admin_answered(admin, "GET", "/invocations", params={"limit": 5})).json()
            described = [
                (await admin_answered(admin, "GET", f"/invocations/{view['id']}")).status_code for view in listing["invocations"]
            ]
        assert described == [200] * 5, f"{node.name} could not describe every invocation it listed: {described}"
        answers.append((states, listing["total"]))
    assert answers[0][1] > 100, "the listing counts every node's invocations"
    assert all(answer == answers[0] for answer in answers), answers


async def test_three_nodes_lose_nothing_when_two_of_them_are_killed_in_turn(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess], tmp_path: pathlib.Path
) -> None:  # noqa: F811
    nodes = await start_nodes(server_process, postgres, tmp_path, 3)
    a, b, c = nodes
    load = Load(nodes, seed=17)
    takeovers = []
    async with anyio.create_task_group() as clients:
        for _ in range(4):
            clients.start_soon(load.client)
        for victim, survivors in ((b, (a, c)), (c, (a, b))):
            await anyio.sleep(2.0)
            victim.kill9()
            took = await wait_until_owned(survivors[0], {node.name for node in survivors}, timeout=LEASE_S + 5)
            takeovers.append(took)
            await anyio.sleep(1.0)
            if victim is c:  # its disk is lost while it is down: the truth is in PostgreSQL
                shutil.rmtree(victim.server.data_dir)
            await victim.start()  # it rejoins and gets its share back
            await wait_until_owned(survivors[0], {"node-a", "node-b", "node-c"}, timeout=30)
        await anyio.sleep(1.0)
        load.stop.set()
    assert all(took <= LEASE_S + 5 for took in takeovers), takeovers
    assert sum(len(refs) for refs in load.added.values()) >= 10 and sum(len(o) for o in load.orders.values()) >= 3, "the load ran"
    assert "loaded the local store from PostgreSQL" in c.server.new_output()
    await check_nothing_lost_or_doubled(load, a)
    await check_every_node_answers_for_the_cluster(nodes)
    print(
        f"takeovers {['%.1f s' % t for t in takeovers]}; acknowledged {sum(map(len, load.added.values()))} adds, "
        f"{sum(map(len, load.orders.values()))} orders, {len(load.workflows)} workflows; {load.retries} retries"
    )
    for node in nodes:
        node.server.terminate()


async def test_a_node_paused_past_its_lease_is_refused_by_the_fence_and_doubles_nothing(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess], tmp_path: pathlib.Path
) -> None:  # noqa: F811
    nodes = await start_nodes(server_process, postgres, tmp_path, 2)
    a, b = nodes
    load = Load(nodes, seed=5)
    # Work in flight on the node about to be paused: orders sleeping (their timers fall due while it is
    # stopped) and adds it received just before the pause.
    async with anyio.create_task_group() as clients:
        for _ in range(3):
            clients.start_soon(load.client)
        await anyio.sleep(1.5)
        assert b.server.process is not None
        b.server.process.send_signal(signal.SIGSTOP)
        b.up = False
        await wait_until_owned(a, {"node-a"}, timeout=LEASE_S + 5)
        await anyio.sleep(LEASE_S)  # paused for twice its lease in all
        # Requests wait in the paused node's socket: it finds them when it wakes up.
        async with anyio.create_task_group() as queued:
            for key in HOT_KEYS:

                async def straight_to_b(key: str = key) -> None:
                    ref = load.next_id("queued-")
                    try:
                        async with b.server.client() as client:
                            response = await client.post(
                                f"/Counter/{key}/add", json={"ref": ref, "amount": 1}, headers={"idempotency-key": ref}
                            )
                        done = response.status_code == 200
                    except httpx.HTTPError:
                        done = False
                    if not done:  # refused while it stepped down: retried elsewhere, same key
                        await load.answered(
                            "POST", f"/Counter/{key}/add", json={"ref": ref, "amount": 1}, headers={"idempotency-key": ref}
                        )
                    load.added[key].append(ref)

                queued.start_soon(straight_to_b)
            await anyio.sleep(0.5)
            b.server.process.send_signal(signal.SIGCONT)
        b.up = True
        await wait_until_owned(a, {"node-a", "node-b"}, timeout=30)  # it rejoined and got its share back
        await anyio.sleep(1.0)
        load.stop.set()
    await check_nothing_lost_or_doubled(load, a)
    refused = next(node for node in (await cluster_of(b))["nodes"] if node["name"] == "node-b")["batches_refused"]
    assert refused["fenced"] + refused["lease_expired"] >= 1, f"the paused node's writes were not refused: {refused}"
    print(f"node-b's batches refused after its pause: {refused}")
    # SIGTERM hands a node's partitions over at once (its leases are released, not left to expire).
    b.up = False
    stopped_at = time.monotonic()
    assert b.server.terminate() == 0
    await wait_until_owned(a, {"node-a"}, timeout=LEASE_S)
    print(f"node-a owned everything {time.monotonic() - stopped_at:.1f} s after node-b's SIGTERM")
    a.server.terminate()


async def test_a_deployment_registered_through_a_node_not_holding_the_cluster_rows_is_served_by_every_node(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess], tmp_path: pathlib.Path
) -> None:  # noqa: F811
    endpoint = hypercorn_deployment("tests.apps.tour_asgi:app", tmp_path / "endpoint.log")
    await endpoint.start()
    try:
        nodes = await start_nodes(server_process, postgres, tmp_path, 2, app=None)  # `durio server`: remote services only
        [(holder,)] = postgres.sql("SELECT split_part(owner, '@', 1) FROM durio_partitions WHERE pid = -1")
        other = next(node for node in nodes if node.name != holder)
        async with other.server.client(admin=True) as admin:
            response = await admin_answered(admin, "POST", "/deployments", json={"uri": endpoint.url})
        assert response.status_code == 201, response.text
        users = [f"user-{i}" for i in range(6)]  # keys on both nodes' partitions
        for node in nodes:
            async with node.server.client() as client:
                for user in users:
                    response = await admin_answered(
                        client,
                        "POST",
                        f"/UserSubscriptions/{user}/add",
                        json=f"via-{node.name}",
                        headers={"idempotency-key": f"{user}-{node.name}"},
                    )
                    assert response.status_code == 200, f"{node.name}: {response.text}"
        for node in nodes:
            async with node.server.client() as client, node.server.client(admin=True) as admin:
                assert [d["uri"] for d in (await admin_answered(admin, "GET", "/deployments")).json()["deployments"]] == [
                    endpoint.url
                ]
                for user in users:
                    response = await admin_answered(client, "POST", f"/UserSubscriptions/{user}/getSubscriptions", json=None)
                    assert response.json() == ["via-node-a", "via-node-b"], response.text
        for node in nodes:
            node.server.terminate()
    finally:
        endpoint.stop()


async def test_schedules_are_kept_by_their_partitions_owners_and_managed_through_any_node(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess], tmp_path: pathlib.Path
) -> None:  # noqa: F811
    nodes = await start_nodes(server_process, postgres, tmp_path, 2)
    a, b = nodes
    schedule_ids = [f"peek-{i}" for i in range(4)]  # their partitions fall on both nodes
    async with a.server.client(admin=True) as admin_a, b.server.client(admin=True) as admin_b:
        for schedule_id in schedule_ids:
            created = await admin_answered(
                admin_a, "POST", "/schedules", json={"id": schedule_id, "every": "1s", "target": "Counter/sched/peek"}
            )
            assert created.status_code == 201, created.text
        for admin in (admin_a, admin_b):
            assert sorted(s["id"] for s in (await admin_answered(admin, "GET", "/schedules")).json()["schedules"]) == schedule_ids

        async def every_one_fired() -> bool:
            views = [(await admin_answered(admin_b, "GET", f"/schedules/{schedule_id}")).json() for schedule_id in schedule_ids]
            return all(view["last_fires"] for view in views)

        with anyio.fail_after(20):
            while not await every_one_fired():
                await anyio.sleep(0.2)
        for schedule_id in schedule_ids:
            assert (await admin_answered(admin_b, "PATCH", f"/schedules/{schedule_id}/pause")).status_code == 200
            assert (await admin_answered(admin_b, "GET", f"/schedules/{schedule_id}")).json()["paused"] is True
            assert (await admin_answered(admin_b, "DELETE", f"/schedules/{schedule_id}")).status_code in (200, 204)
        assert (await admin_answered(admin_a, "GET", "/schedules")).json() == {"schedules": []}
    for node in nodes:
        node.server.terminate()


async def test_postgresql_stopped_for_ten_seconds_under_load_loses_nothing_and_the_nodes_recover_by_themselves(
    postgres: Postgres, server_process: typing.Callable[..., ServerProcess], tmp_path: pathlib.Path
) -> None:  # noqa: F811
    nodes = await start_nodes(server_process, postgres, tmp_path, 2)
    a, b = nodes
    load = Load(nodes, seed=23)
    async with anyio.create_task_group() as clients:
        for _ in range(3):
            clients.start_soon(load.client)
        await anyio.sleep(1.5)
        await anyio.to_thread.run_sync(postgres.stop)
        # While it is down, a new request is refused with 503 and Retry-After by either node.
        for node in nodes:
            async with node.server.client() as client:
                response = await client.post(
                    "/Counter/outage/add", json={"ref": "probe", "amount": 1}, headers={"idempotency-key": f"probe-{node.name}"}
                )
            assert response.status_code == 503 and response.headers.get("retry-after") == "1", response.text
        await anyio.sleep(10.0)
        assert all(node.server.process is not None and node.server.process.poll() is None for node in nodes), (
            "the nodes must outlive PostgreSQL's outage"
        )
        await anyio.to_thread.run_sync(postgres.start)
        await wait_until_owned(a, {"node-a", "node-b"}, timeout=30)
        done_before = sum(map(len, load.added.values()))
        await anyio.sleep(2.0)
        load.stop.set()
    assert sum(map(len, load.added.values())) > done_before, "the load went on after the outage"
    await check_nothing_lost_or_doubled(load, a)
    for node in nodes:
        node.server.terminate()
