#!/usr/bin/env python3
"""kill -9 soak: mixed load on a real `durio serve` process, killed with SIGKILL over and over.

    .venv/bin/python scripts/soak.py [--kills 50] [--seed N] [--data-dir DIR]

The services are tests/apps/soak_app.py. Workers send a mix of requests, each of which
has a well-defined "accepted":
  - calls and sends with an Idempotency-Key, retried with the same key through every
    kill until they get an answer (orders, counter additions, delayed counter additions);
  - workflow runs, retried until they answer (a 409 means it ran before: attach to it);
  - sends without a key, tried once: accepted if and only if the 202 arrived.
Meanwhile the server is killed at random moments and restarted on the same data dir and
ports. After each kill, while the process is dead, the LMDB files are read (read-only) to
note which `run` steps were durable, and the step log is counted.

At the end, every accepted invocation must have completed exactly once:
  - one invocation per idempotency key / workflow id, all completed successfully, and
    outputs equal to what the handlers compute (and to what the clients got);
  - each order made exactly one Counter.add call and one Audit.record send;
  - each counter's ledger holds every accepted addition's ref exactly once, and its total
    is the sum of their amounts (no lost or doubled state writes);
  - each `run` step ran at least once, at most once per server lifetime, and never again
    after a kill that found it durable (at-least-once only when the journal write and
    the kill race);
  - exclusive handlers of one key never overlap within a server process, and after every
    kill, storage lets only the head of a key's inbox run;
  - the server logged no traceback and stops cleanly on SIGTERM.
Exits 1 and lists the violations otherwise.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing

import httpx
import anyio
import trio

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from durio.journal import entries as e  # noqa: E402
from durio.storage.lmdb_store import LmdbStore  # noqa: E402

SOAK_APP = ROOT / "tests" / "apps" / "soak_app.py"
COUNTERS = [f"c{n}" for n in range(6)]
STEPS = {("Orders", "process"): ("reserve", "charge"), ("Audit", "record"): ("audit",), ("Onboarding", "run"): ("welcome",),
         ("Counter", "add"): ("lock-enter",)}
_LISTENING = re.compile(r"durio (ingress|admin) listening on (http://\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerFailed(Exception):
    pass


class Server:
    """`durio serve` on fixed ports, so clients find it again after each restart."""

    def __init__(self, data_dir: pathlib.Path, log_path: pathlib.Path, steps_log: pathlib.Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.ingress_url = f"http://127.0.0.1:{free_port()}"
        self.admin_url = f"http://127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "SOAK_LOG": str(steps_log)}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> int:
        """Start the process without waiting for it; returns where its output starts in the log."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "durio.cli", "serve", str(SOAK_APP), "--data-dir", str(self.data_dir),
                 "--ingress", self.ingress_url[len("http://"):], "--admin", self.admin_url[len("http://"):]],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(ROOT),
            )
        return offset

    async def start(self, timeout: float = 60.0) -> None:
        for attempt in range(5):
            offset = self.spawn()
            assert self.process is not None
            deadline = time.monotonic() + timeout
            while True:
                output = self.output()[offset:]
                if len(set(kind for kind, _ in _LISTENING.findall(output))) == 2:
                    self.starts += 1
                    return
                if self.process.poll() is not None:
                    if "address already in use" in output.lower() and attempt < 4:
                        await anyio.sleep(0.5)
                        break  # the port is still held by the dead process's sockets: try again
                    if self.process.returncode < 0 and attempt < 4:
                        # Killed by a signal we did not send (another process on a shared machine): not durio's doing.
                        print(f"soak: the starting server died of signal {-self.process.returncode}; starting it again", flush=True)
                        break
                    raise ServerFailed(f"the server exited with {self.process.returncode} while starting:\n{output[-5000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server did not start in {timeout} s:\n{output[-5000:]}")
                await anyio.sleep(0.02)
        raise ServerFailed("the server could not start in 5 attempts")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return -9
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""


# --------------------------------------------------------------------------------------
# What the clients asked for and got


@dataclasses.dataclass
class Model:
    orders: dict[str, dict] = dataclasses.field(default_factory=dict)  # id -> the order
    order_results: dict[str, typing.Any] = dataclasses.field(default_factory=dict)  # id -> output the client got (calls)
    order_ids: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> invocation id the client was told
    additions: dict[str, dict] = dataclasses.field(default_factory=dict)  # ref -> {counter, amount, delayed}
    audits: dict[str, bool] = dataclasses.field(default_factory=dict)  # ref -> True accepted (202), False unknown
    workflows: dict[str, str] = dataclasses.field(default_factory=dict)  # workflow id -> name
    workflow_results: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    ghosts: set[str] = dataclasses.field(default_factory=set)  # ran, then erased by a kill before their creation was durable
    violations: list[str] = dataclasses.field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations.append(text)


class Load:
    """Workers that keep sending requests, retrying through kills."""

    def __init__(self, server: Server, model: Model, rng: random.Random) -> None:
        self.server = server
        self.model = model
        self.rng = rng
        self.stopping = False
        self.serial = 0

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    async def until_answered(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: typing.Any) -> httpx.Response:
        """Retry through connection failures (the server is dead or restarting) until an HTTP answer arrives."""
        delay = 0.02
        while True:
            self.model.requests += 1
            try:
                response = await client.request(method, path, **kwargs)
            except httpx.TransportError:
                self.model.retries += 1
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if response.status_code >= 500:
                self.model.violation(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
                await anyio.sleep(delay)
                continue
            return response

    async def worker(self, client: httpx.AsyncClient) -> None:
        operations = [self.order_call, self.order_call, self.order_send, self.add_call, self.add_delayed,
                      self.audit_send, self.workflow]
        while not self.stopping:
            await self.rng.choice(operations)(client)

    async def order_call(self, client: httpx.AsyncClient, send: bool = False) -> None:
        order_id = self.next_id("o")
        order = {"id": order_id, "amount": self.rng.randint(1, 9), "counter": self.rng.choice(COUNTERS),
                 "sleep_ms": self.rng.randint(5, 80)}
        self.model.orders[order_id] = order
        verb = "send" if send else "call"
        response = await self.until_answered(client, "POST", f"/restate/{verb}/Orders/process", json=order,
                                             headers={"idempotency-key": order_id})
        if send:
            if response.status_code != 202:
                self.model.violation(f"send of order {order_id}: {response.status_code} {response.text[:300]}")
                return
            self.model.order_ids[order_id] = response.json()["invocationId"]
            return
        if response.status_code != 200:
            self.model.violation(f"call of order {order_id}: {response.status_code} {response.text[:300]}")
            return
        self.model.order_ids[order_id] = response.headers["x-restate-id"]
        self.model.order_results[order_id] = response.json()

    async def order_send(self, client: httpx.AsyncClient) -> None:
        await self.order_call(client, send=True)

    async def add_call(self, client: httpx.AsyncClient, delayed: bool = False) -> None:
        ref = self.next_id("d" if delayed else "a")
        counter = self.rng.choice(COUNTERS)
        addition = {"ref": ref, "amount": self.rng.randint(1, 9)}
        self.model.additions[ref] = {"counter": counter, "amount": addition["amount"], "delayed": delayed}
        if delayed:
            path = f"/restate/send/Counter/{counter}/add?delay={self.rng.randint(10, 400)}ms"
        else:
            path = f"/restate/call/Counter/{counter}/add"
        response = await self.until_answered(client, "POST", path, json=addition, headers={"idempotency-key": ref})
        expected = 202 if delayed else 200
        if response.status_code != expected:
            self.model.violation(f"addition {ref}: {response.status_code} {response.text[:300]}")
        elif not delayed and not isinstance(response.json(), int):
            self.model.violation(f"addition {ref} answered {response.text[:300]}")

    async def add_delayed(self, client: httpx.AsyncClient) -> None:
        await self.add_call(client, delayed=True)

    async def audit_send(self, client: httpx.AsyncClient) -> None:
        """A send without an idempotency key, tried once: accepted exactly when its 202 arrived."""
        ref = self.next_id("u")
        self.model.audits[ref] = False
        self.model.requests += 1
        try:
            response = await client.post("/restate/send/Audit/record", json=ref)
        except httpx.TransportError:
            await anyio.sleep(0.05)
            return
        if response.status_code == 202:
            self.model.audits[ref] = True
        else:
            self.model.violation(f"send of audit {ref}: {response.status_code} {response.text[:300]}")

    async def workflow(self, client: httpx.AsyncClient) -> None:
        """Start a workflow run, resolve its promise through a shared handler, attach to its result."""
        workflow_id = self.next_id("w")
        name = f"user-{workflow_id}"
        self.model.workflows[workflow_id] = name
        base = f"/Onboarding/{workflow_id}"
        if self.rng.random() < 0.5:
            started = await self.until_answered(client, "POST", f"/restate/send{base}/run", json=name)
            if started.status_code != 202:
                self.model.violation(f"workflow {workflow_id}: send answered {started.status_code} {started.text[:300]}")
                return
        else:
            # A call would wait for the promise: start it, give up waiting, and resolve the promise below.
            self.model.requests += 1
            with anyio.move_on_after(0.05):
                try:
                    await client.post(f"/restate/call{base}/run", json=name)
                except httpx.TransportError:
                    pass
            started = await self.until_answered(client, "POST", f"/restate/send{base}/run", json=name)
            if started.status_code != 202:
                self.model.violation(f"workflow {workflow_id}: send answered {started.status_code} {started.text[:300]}")
                return
        verified = await self.until_answered(client, "POST", f"/restate/call{base}/verify", json=f"{name}@example.com",
                                             headers={"idempotency-key": f"verify-{workflow_id}"})
        if verified.status_code != 200:
            self.model.violation(f"workflow {workflow_id}: verify answered {verified.status_code} {verified.text[:300]}")
            return
        result = await self.until_answered(client, "GET", f"/restate/workflow/Onboarding/{workflow_id}/attach")
        if result.status_code != 200:
            self.model.violation(f"workflow {workflow_id}: attach answered {result.status_code} {result.text[:300]}")
            return
        self.model.workflow_results[workflow_id] = result.json()


# --------------------------------------------------------------------------------------
# What was durable at each kill


@dataclasses.dataclass
class Snapshot:
    durable: set[tuple[str, str]]  # (invocation id, step) whose result was journaled
    executions: collections.Counter  # (invocation id, step) -> executions logged so far


def read_storage(data_dir: pathlib.Path) -> tuple[set[tuple[str, str]], list[str]]:
    """The (invocation, step) pairs whose results are durable, and what breaks the key rule in storage.

    The key rule: an exclusive invocation that may run (ready, backing off, suspended) is the head
    of its key's inbox; otherwise a restart runs two exclusive invocations of one key at once.
    """
    if not (data_dir / "data.mdb").exists():
        return set(), []
    store = LmdbStore(data_dir, readonly=True)
    try:
        def scan(txn: typing.Any) -> tuple[set[tuple[str, str]], list[str]]:
            durable = set()
            broken = []
            for record in txn.iter_invocations():
                journal = txn.journal(record.id)
                runs = {entry.completion_id: entry.name for entry in journal if isinstance(entry, e.Run)}
                durable.update((record.id, runs[n.completion_id]) for n in journal
                               if isinstance(n, e.Completion) and n.completion_id in runs)
                if record.is_exclusive and str(record.status) in ("ready", "backing-off", "suspended"):
                    head = txn.inbox_head(record.target.service, record.target.key)
                    if head is None or head[1] != record.id:
                        broken.append(f"{record.id} ({record.target.service}/{record.target.key}) is {record.status} "
                                      f"but the key's inbox head is {head[1] if head else 'nobody'}")
            return durable, broken

        return store.read(scan)
    finally:
        store.close()


def read_executions(steps_log: pathlib.Path) -> list[tuple[str, str, str]]:
    """(invocation id, step, what for) per line of the step log."""
    if not steps_log.exists():
        return []
    return [tuple(line.split(" ", 2)) for line in steps_log.read_text().splitlines() if line]  # type: ignore[misc]


def count_executions(steps_log: pathlib.Path) -> collections.Counter:
    return collections.Counter((invocation_id, step) for invocation_id, step, _ in read_executions(steps_log))


# --------------------------------------------------------------------------------------
# The run


@dataclasses.dataclass
class Result:
    kills: int
    invocations: int
    requests: int
    retries: int
    duration_s: float
    violations: list[str]
    counts: dict[str, int]


async def soak(kills: int, seed: int, data_dir: pathlib.Path, workers: int = 6, min_gap: float = 0.15,
               max_gap: float = 1.2, early_kills: float = 0.15, settle_timeout: float = 120.0) -> Result:
    started = time.monotonic()
    rng = random.Random(seed)
    work_dir = data_dir.parent
    steps_log = work_dir / "steps.log"
    server = Server(data_dir, work_dir / "server.log", steps_log)
    model = Model()
    load = Load(server, model, rng)
    snapshots: list[Snapshot] = []
    await server.start()
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    timeout = httpx.Timeout(60.0, connect=2.0)
    async with httpx.AsyncClient(base_url=server.ingress_url, timeout=timeout, limits=limits) as client:
        async with anyio.create_task_group() as nursery:
            for _ in range(workers):
                nursery.start_soon(load.worker, client)
            ready = True
            for number in range(kills):
                # A ready server runs a while; one still starting (opening its files, recovering) is killed sooner.
                await anyio.sleep(rng.uniform(min_gap, max_gap) if ready else rng.uniform(0.0, 0.6))
                server.kill9()
                # The process is dead: what its files hold now is what survived.
                durable, broken = read_storage(data_dir)
                snapshots.append(Snapshot(durable, count_executions(steps_log)))
                for problem in broken:
                    model.violation(f"storage after kill {number + 1}: {problem}")
                print(f"kill {number + 1}/{kills}{'' if ready else ' (while starting)'}: "
                      f"{len(snapshots[-1].durable)} durable steps, {model.requests} requests so far", flush=True)
                if number < kills - 1 and rng.random() < early_kills:
                    server.spawn()
                    ready = False
                    continue
                try:
                    await server.start()
                    ready = True
                except ServerFailed as exc:
                    model.violation(f"after kill {number + 1}: {exc}")
                    nursery.cancel_scope.cancel()
                    return Result(number + 1, 0, model.requests, model.retries, time.monotonic() - started,
                                  model.violations, {})
            await anyio.sleep(0.5)
            load.stopping = True  # each worker finishes (retries) the request it is on, then stops
    admin = httpx.Client(base_url=server.admin_url, timeout=60)
    try:
        invocations = settle(admin, settle_timeout, model)
        check(model, invocations, snapshots, read_executions(steps_log), admin, server)
    finally:
        admin.close()
        code = server.terminate()
    if code != 0:
        model.violation(f"the server exited with {code} on SIGTERM")
    problems = [line for line in server.output().splitlines() if "Traceback" in line or "crashed" in line]
    if problems:
        model.violation(f"the server logged {len(problems)} tracebacks or crashes (see {server.log_path}), first: {problems[0]}")
    counts = {
        "orders": len(model.orders), "additions": len(model.additions), "audit sends accepted": sum(model.audits.values()),
        "audit sends unanswered": sum(not v for v in model.audits.values()), "workflows": len(model.workflows),
        "unanswered sends that ran but were erased by a kill": len(model.ghosts),
    }
    return Result(kills, len(invocations), model.requests, model.retries, time.monotonic() - started,
                  model.violations, counts)


def settle(admin: httpx.Client, timeout: float, model: Model) -> list[dict]:
    """Wait until every invocation in storage has completed; return them all."""
    deadline = time.monotonic() + timeout
    while True:
        response = admin.get("/invocations", params={"limit": "10000000"})
        if response.status_code != 200:
            model.violation(f"GET /invocations answered {response.status_code}: {response.text[:300]}")
            return []
        listing = response.json()
        invocations = listing["invocations"]
        if len(invocations) != listing["total"]:
            model.violation(f"GET /invocations listed {len(invocations)} of {listing['total']}")
        pending = [i for i in invocations if i["status"] != "completed"]
        if not pending:
            return invocations
        if time.monotonic() > deadline:
            for invocation in pending[:20]:
                model.violation(f"{invocation['id']} {invocation['target']} is still {invocation['status']} "
                                f"(retries {invocation['retry_count']}, last failure {invocation['last_failure']})")
            return invocations
        time.sleep(0.2)


def check(model: Model, invocations: list[dict], snapshots: list[Snapshot], executions: list[tuple[str, str, str]],
          admin: httpx.Client, server: Server) -> None:
    v = model.violation
    final = collections.Counter((invocation_id, step) for invocation_id, step, _ in executions)
    by_target: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for invocation in invocations:
        by_target[(invocation["target_service_name"], invocation["target_handler_name"])].append(invocation)
        if invocation["status"] == "completed" and invocation["completion_result"] != "success":
            v(f"{invocation['id']} {invocation['target']} failed: {invocation.get('completion_failure')}")
    known = {("Orders", "process"), ("Counter", "add"), ("Audit", "record"), ("Payments", "confirm"), ("Onboarding", "run"),
             ("Onboarding", "verify")}
    for target, found in by_target.items():
        if target not in known:
            v(f"unexpected invocations of {target}: {len(found)}")

    # Orders: one invocation per idempotency key, with the output the handler computes.
    orders = by_target[("Orders", "process")]
    order_by_key = collections.defaultdict(list)
    for invocation in orders:
        order_by_key[invocation["idempotency_key"]].append(invocation)
    for order_id, order in model.orders.items():
        found = order_by_key.get(order_id, [])
        if len(found) != 1:
            v(f"order {order_id} has {len(found)} invocations")
            continue
        invocation = found[0]
        output = invocation.get("output") or {}
        expected = {"order": order_id, "reservation": f"res-{order_id}", "charge": f"charged-{order['amount']}",
                    "confirmation": "confirmed"}
        if {k: output.get(k) for k in expected} != expected or not isinstance(output.get("counter_total"), int):
            v(f"order {order_id} output {output}, expected {expected} and a counter_total")
        if model.order_ids.get(order_id) not in (None, invocation["id"]):
            v(f"order {order_id}: the client was told {model.order_ids[order_id]}, storage has {invocation['id']}")
        if order_id in model.order_results and model.order_results[order_id] != output:
            v(f"order {order_id}: the client got {model.order_results[order_id]}, storage has {output}")
    if len(orders) != len(model.orders):
        v(f"{len(orders)} order invocations for {len(model.orders)} orders")

    # Each order made exactly one Counter.add call, one Audit.record send and one Payments.confirm send.
    order_invocations = {i["id"]: i for i in orders}
    children: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for invocation in invocations:
        if invocation.get("invoked_by"):
            children[(invocation["target_service_name"], invocation["target_handler_name"])][invocation["invoked_by"]] += 1
    for target in (("Counter", "add"), ("Audit", "record"), ("Payments", "confirm")):
        for order_invocation_id, order in order_invocations.items():
            made = children[target][order_invocation_id]
            if made != 1:
                v(f"order {order['idempotency_key']} ({order_invocation_id}) made {made} {'.'.join(target)} invocations")
        strays = set(children[target]) - set(order_invocations)
        if strays:
            v(f"{'.'.join(target)} invocations made by unknown callers {sorted(strays)[:5]}")

    # Counter additions: one invocation per idempotency key; the ledger has every ref once.
    adds = by_target[("Counter", "add")]
    adds_by_key = collections.Counter(i["idempotency_key"] for i in adds if i["idempotency_key"])
    for ref in model.additions:
        if adds_by_key[ref] != 1:
            v(f"addition {ref} has {adds_by_key[ref]} invocations")
    if len(adds) != len(model.additions) + len(model.orders):
        v(f"{len(adds)} Counter.add invocations for {len(model.additions)} additions and {len(model.orders)} orders")
    expected_refs: dict[str, list[str]] = collections.defaultdict(list)
    expected_totals: collections.Counter = collections.Counter()
    for ref, addition in model.additions.items():
        expected_refs[addition["counter"]].append(ref)
        expected_totals[addition["counter"]] += addition["amount"]
    for order_id, order in model.orders.items():
        expected_refs[order["counter"]].append(order_id)
        expected_totals[order["counter"]] += order["amount"]
    with httpx.Client(base_url=server.ingress_url, timeout=60) as client:
        for counter in COUNTERS:
            state = client.post(f"/restate/call/Counter/{counter}/peek").json()
            ledger = collections.Counter(state["ledger"])
            doubled = sorted(ref for ref, n in ledger.items() if n > 1)
            lost = sorted(set(expected_refs[counter]) - set(ledger))
            extra = sorted(set(ledger) - set(expected_refs[counter]))
            if doubled or lost or extra:
                v(f"counter {counter}: doubled {doubled[:10]}, lost {lost[:10]}, unexpected {extra[:10]}")
            if state["total"] != expected_totals[counter]:
                v(f"counter {counter}: total {state['total']}, expected {expected_totals[counter]}")

    # Audits: the orders' sends, plus the accepted unkeyed sends once each (the unanswered ones at most once).
    audits = by_target[("Audit", "record")]
    audit_outputs = collections.Counter(i.get("output") for i in audits)
    for ref, accepted in model.audits.items():
        n = audit_outputs[ref]
        if n > 1 or (accepted and n != 1):
            v(f"audit {ref} ({'accepted' if accepted else 'unanswered'}) has {n} invocations")
    for order_id in model.orders:
        if audit_outputs[order_id] != 1:
            v(f"the audit of order {order_id} has {audit_outputs[order_id]} invocations")
    unknown_audits = set(audit_outputs) - set(model.audits) - set(model.orders)
    if unknown_audits:
        v(f"audits nobody sent: {sorted(map(str, unknown_audits))[:5]}")

    # Workflows: one run per id, with its result.
    runs = collections.defaultdict(list)
    for invocation in by_target[("Onboarding", "run")]:
        runs[invocation["target_service_key"]].append(invocation)
    for workflow_id, name in model.workflows.items():
        found = runs.get(workflow_id, [])
        if len(found) != 1:
            v(f"workflow {workflow_id} has {len(found)} runs")
            continue
        expected_output = f"welcome {name} at {name}@example.com"
        if found[0].get("output") != expected_output:
            v(f"workflow {workflow_id} output {found[0].get('output')!r}, expected {expected_output!r}")
        if model.workflow_results.get(workflow_id) != expected_output:
            v(f"workflow {workflow_id}: the client got {model.workflow_results.get(workflow_id)!r}")
    if len(runs) != len(model.workflows):
        v(f"{len(runs)} workflow runs for {len(model.workflows)} workflows")
    verifies = collections.Counter((i["target_service_key"], i["idempotency_key"]) for i in by_target[("Onboarding", "verify")])
    for workflow_id in model.workflows:
        if verifies[(workflow_id, f"verify-{workflow_id}")] != 1:
            v(f"workflow {workflow_id} has {verifies[(workflow_id, f'verify-{workflow_id}')]} verify invocations")
    if sum(verifies.values()) != len(model.workflows):
        v(f"{sum(verifies.values())} verify invocations for {len(model.workflows)} workflows")

    # Steps: at least once; at most once per server lifetime; never again once a kill found them durable.
    epochs = [*(s.executions for s in snapshots), final]
    for invocation in invocations:
        for step in STEPS.get((invocation["target_service_name"], invocation["target_handler_name"]), ()):
            key = (invocation["id"], step)
            if final[key] < 1:
                v(f"step {step} of {invocation['id']} never ran, yet the invocation completed")
            previous = 0
            for number, so_far in enumerate(epochs):
                if so_far[key] - previous > 1:
                    v(f"step {step} of {invocation['id']} ran {so_far[key] - previous} times in server lifetime {number + 1}")
                previous = so_far[key]
            for number, snapshot in enumerate(snapshots):
                if key in snapshot.durable and final[key] != snapshot.executions[key]:
                    v(f"step {step} of {invocation['id']} was durable at kill {number + 1} "
                      f"(ran {snapshot.executions[key]} times) but ran {final[key]} times in the end")
                    break
    # Exclusive handlers of one key never overlap within one server process.
    holders: dict[str, str] = {}  # "key:pid" -> the invocation inside its lock step
    for invocation_id, step, where in executions:
        if step == "lock-enter":
            if where in holders:
                v(f"two exclusive handlers of Counter/{where.split(':')[0]} ran at once in process {where.split(':')[1]}: "
                  f"{holders[where]} and {invocation_id}")
            holders[where] = invocation_id
        elif step == "lock-exit" and holders.get(where) == invocation_id:
            del holders[where]

    # A step may run for an invocation that storage does not have only when nobody was told it exists: a send
    # without an idempotency key whose 202 never arrived (the server may start such an invocation while its
    # creation is being committed, and the kill erased the creation).
    existing = {i["id"] for i in invocations}
    for invocation_id, step, subject in executions:
        if invocation_id in existing:
            continue
        if step == "audit" and model.audits.get(subject) is False:
            model.ghosts.add(invocation_id)
            continue
        v(f"step {step} ran for {subject} in {invocation_id}, an invocation that does not exist")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--data-dir", type=pathlib.Path, default=None,
                        help="the server's data dir (must not exist yet); default: a temporary folder, removed on success")
    parser.add_argument("--workers", type=int, default=6, help="concurrent clients")
    parser.add_argument("--max-gap", type=float, default=1.2, help="longest time between restarts and kills, in seconds")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2 ** 32)
    temporary = args.data_dir is None
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="durio-soak-")) / "data" if temporary else args.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        parser.error(f"{data_dir} is not empty: the soak checks everything in it")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"soak: seed {seed}, {args.kills} kills, data in {data_dir}", flush=True)
    result = trio.run(lambda: soak(args.kills, seed, data_dir, workers=args.workers, max_gap=args.max_gap))
    print(f"soak: survived {result.kills} kills; checked {result.invocations} invocations "
          f"({', '.join(f'{k} {n}' for k, n in result.counts.items())}); {result.requests} requests, "
          f"{result.retries} retried; {result.duration_s:.1f} s", flush=True)
    if result.violations:
        print(f"soak: {len(result.violations)} VIOLATIONS (seed {seed}, files in {data_dir.parent}):")
        for line in result.violations[:200]:
            print(f"  - {line}")
        return 1
    print("soak: OK, every accepted invocation completed exactly once")
    if temporary:
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
