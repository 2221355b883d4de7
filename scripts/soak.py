#!/usr/bin/env python3
"""kill -9 soak: mixed load on a real multi-worker `durio serve`, its workers and its whole process group killed over and over.

    .venv/bin/python scripts/soak.py [--worker-kills 50] [--group-kills 10] [--workers 2] [--partitions 8]
                                     [--seed N] [--data-dir DIR]

The services are tests/apps/soak_app.py. The server runs `--workers N` worker processes under a
supervising parent, in a session (process group) of its own. Clients send a mix of requests, each
of which has a well-defined "accepted":
  - calls and sends with an Idempotency-Key, retried with the same key through every
    kill until they get an answer (orders, counter additions, delayed counter additions);
  - workflow runs, retried until they answer (a 409 means it ran before: attach to it);
  - sends without a key, tried once: accepted if and only if the 202 arrived.
Orders run on a random partition and call a Counter on its key's partition, most often another
worker's. Meanwhile, at random moments, in a random order:
  - a single worker (a random pid from GET /cluster) gets kill -9; the parent restarts it. Until
    the replacement is listed in /cluster (the restart time), probes call Counter/<key>/peek over
    fresh connections for keys whose partitions the surviving workers own: any that fails is a
    violation. The next single kill waits for the replacement, except that sometimes it kills the
    replacement while it is still starting (recovering, or serving but not yet listed: a probe in
    flight at that kill may have reached it, so its failure is counted apart, not as a violation);
  - the whole process group gets kill -9 (os.killpg), and the server is started again on the same
    data dir and ports (sometimes killed again while it starts).
After each kill, once the victims are dead, the LMDB files are read (read-only) to note which `run`
steps were durable, and the step log is counted.

At the end, every accepted invocation must have completed exactly once:
  - one invocation per idempotency key / workflow id, all completed successfully, and
    outputs equal to what the handlers compute (and to what the clients got);
  - each order made exactly one Counter.add call and one Audit.record send;
  - each counter's ledger holds every accepted addition's ref exactly once, and its total
    is the sum of their amounts (no lost or doubled state writes);
  - each `run` step ran at least once, at most once per lifetime of the (worker) process
    that ran it, and never again after a kill that found it durable (at-least-once only
    when the journal write and the kill race);
  - exclusive handlers of one key never overlap: not within a process, and not in two
    processes unless the first was killed in between; after every kill, storage lets only
    the head of a key's inbox run;
  - no probe of a surviving worker's partitions failed while a worker restarted;
  - the server logged no traceback and stops cleanly on SIGTERM.
Exits 1 and lists the violations otherwise.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing

import httpx
import anyio
import anyio.abc
import anyio.to_thread
import lmdb
import trio

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from durio import ids  # noqa: E402
from durio.journal import entries as e  # noqa: E402
from durio.partitions import PartitionTable  # noqa: E402
from durio.storage.lmdb_store import LmdbStore  # noqa: E402

SOAK_APP = ROOT / "tests" / "apps" / "soak_app.py"
COUNTERS = [f"c{n}" for n in range(6)]
PROBE_KEYS = [f"probe{n}" for n in range(32)]  # Counter keys only the probes use (peek: shared, no state)
STEPS = {
    ("Orders", "process"): ("reserve", "charge"),
    ("Audit", "record"): ("audit",),
    ("Onboarding", "run"): ("welcome",),
    ("Counter", "add"): ("lock-enter",),
}
KILL_MARK = "#kill"  # a line of the step log written just before a kill: "#kill <pid>" or "#kill *" (the whole group)
_LISTENING = re.compile(r"durio (ingress|admin) listening on (http://\S+)")
_RESTART_DELAY = re.compile(r"worker \d+ was killed by SIGKILL; restarting it in ([\d.]+) s")
_LOG_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
_WORKER_KILLED = re.compile(
    _LOG_TIME + r"WARNING durio\.workers: worker (\d+) was killed by SIGKILL; restarting it(?: in ([\d.]+) s)?"
)
_WORKER_OWNS = re.compile(_LOG_TIME + r"INFO durio\.workers: worker (\d+) \(pid \d+\) owns partitions")
_SUPERVISOR_STARTS = re.compile(r"durio runs \d+ workers on")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_dead(pid: int) -> bool:
    """Gone, or a zombie whose threads have all exited: only then are its files, sockets and locks closed (the
    main thread of a killed process turns zombie while its other threads may still be exiting, holding them)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return False
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except (FileNotFoundError, ProcessLookupError):
        return True


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and not is_dead(int(entry)):
            members.append(int(entry))
    return members


def partition_owner(key: str, partitions: int, workers: int) -> int:
    """The index of the worker that owns a Counter key's partition."""
    return PartitionTable(partitions, frozenset()).of_key(ids.partition_key_of(key)) % workers


class ServerFailed(Exception):
    pass


class Server:
    """`durio serve --workers N` on fixed ports, in a session of its own, so clients find it again after each restart."""

    def __init__(
        self, data_dir: pathlib.Path, log_path: pathlib.Path, steps_log: pathlib.Path, workers: int, partitions: int
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.steps_log = steps_log
        self.workers = workers
        self.partitions = partitions
        self.ingress_url = f"http://127.0.0.1:{free_port()}"
        self.admin_url = f"http://127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "SOAK_LOG": str(steps_log), "SOAK_LOG_PIDS": "1"}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> int:
        """Start the process without waiting for it; returns where its output starts in the log."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "durio.cli",
                    "serve",
                    str(SOAK_APP),
                    "--data-dir",
                    str(self.data_dir),
                    "--ingress",
                    self.ingress_url[len("http://") :],
                    "--admin",
                    self.admin_url[len("http://") :],
                    "--workers",
                    str(self.workers),
                    "--partitions",
                    str(self.partitions),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=str(ROOT),
                start_new_session=True,
            )
        return offset

    async def start(self, timeout: float = 60.0) -> None:
        for attempt in range(5):
            offset = self.spawn()
            assert self.process is not None
            deadline = time.monotonic() + timeout
            while True:
                output = self.output()[offset:]
                if len(set(kind for kind, _ in _LISTENING.findall(output))) == 2 and await self.all_listed():
                    self.starts += 1
                    return
                if self.process.poll() is not None:
                    if "address already in use" in output.lower() and attempt < 4:
                        await anyio.sleep(0.5)
                        break  # the port is still held by the dead process's sockets: try again
                    if self.process.returncode < 0 and attempt < 4:
                        # Killed by a signal we did not send (another process on a shared machine): not durio's doing.
                        print(
                            f"soak: the starting server died of signal {-self.process.returncode}; starting it again", flush=True
                        )
                        break
                    raise ServerFailed(f"the server exited with {self.process.returncode} while starting:\n{output[-5000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server did not start in {timeout} s:\n{output[-5000:]}")
                await anyio.sleep(0.02)
        raise ServerFailed("the server could not start in 5 attempts")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for a server spawned earlier (and not killed since) to list all its workers."""
        deadline = time.monotonic() + timeout
        while not await self.all_listed():
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerFailed(f"the server exited with {self.process.returncode} while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not list its {self.workers} workers in {timeout} s")
            await anyio.sleep(0.05)
        self.starts += 1

    async def worker_pids(self) -> dict[int, int | None] | None:
        """GET /cluster: each worker's pid (None: being restarted); None if the admin port does not answer."""
        if self.workers == 1:
            return {0: self.process.pid} if self.process is not None else None
        try:
            async with httpx.AsyncClient(
                base_url=self.admin_url, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)
            ) as admin:
                response = await admin.get("/cluster")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return {w["worker"]: w.get("pid") for w in response.json()["nodes"][0]["workers"]}

    async def all_listed(self) -> bool:
        pids = await self.worker_pids()
        return pids is not None and len(pids) == self.workers and all(pids.values())

    def children(self) -> list[int]:
        """The supervisor's live children: its workers, listed in /cluster or still starting."""
        assert self.process is not None
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as children:
                return [pid for pid in map(int, children.read().split()) if not is_dead(pid)]
        except FileNotFoundError:
            return []

    def mark_kill(self, what: str) -> None:
        """Note the kill in the step log, before it happens: what a victim logged after this line, it logged dying."""
        fd = os.open(self.steps_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{KILL_MARK} {what}\n".encode())
        finally:
            os.close(fd)

    async def kill_worker(self, pid: int) -> None:
        self.mark_kill(str(pid))
        os.kill(pid, signal.SIGKILL)
        while not is_dead(pid):
            await anyio.sleep(0.005)

    async def kill_group(self) -> None:
        """kill -9 of the supervisor and every worker at once; returns once none is left running."""
        assert self.process is not None
        self.mark_kill("*")
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        while group_members(pgid):
            await anyio.sleep(0.005)

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
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
    accepted: int = 0  # requests answered with a success (2xx)
    retries: int = 0
    ghosts: set[str] = dataclasses.field(default_factory=set)  # ran, then erased by a kill before their creation was durable
    violations: list[str] = dataclasses.field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations.append(text)


class Load:
    """Clients that keep sending requests, retrying through kills."""

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
            if response.status_code < 300:
                self.model.accepted += 1
            return response

    async def client_loop(self, client: httpx.AsyncClient) -> None:
        operations = [
            self.order_call,
            self.order_call,
            self.order_send,
            self.add_call,
            self.add_delayed,
            self.audit_send,
            self.workflow,
        ]
        while not self.stopping:
            await self.rng.choice(operations)(client)

    async def order_call(self, client: httpx.AsyncClient, send: bool = False) -> None:
        order_id = self.next_id("o")
        order = {
            "id": order_id,
            "amount": self.rng.randint(1, 9),
            "counter": self.rng.choice(COUNTERS),
            "sleep_ms": self.rng.randint(5, 80),
        }
        self.model.orders[order_id] = order
        verb = "send" if send else "call"
        response = await self.until_answered(
            client, "POST", f"/restate/{verb}/Orders/process", json=order, headers={"idempotency-key": order_id}
        )
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
            self.model.accepted += 1
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
        verified = await self.until_answered(
            client,
            "POST",
            f"/restate/call{base}/verify",
            json=f"{name}@example.com",
            headers={"idempotency-key": f"verify-{workflow_id}"},
        )
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
    After a single worker's kill the other workers go on writing: one read transaction is one
    committed state all the same (LMDB readers take a snapshot).
    """
    if not (data_dir / "data.mdb").exists():
        return set(), []
    for attempt in range(5):
        try:
            store = LmdbStore(data_dir, readonly=True)
        except lmdb.Error:  # a live worker was growing the map: read again
            if attempt == 4:
                raise
            time.sleep(0.1)
            continue
        try:
            return store.read(_scan_storage)
        except lmdb.MapResizedError:
            if attempt == 4:
                raise
        finally:
            store.close()
    raise AssertionError("unreachable")


def _scan_storage(txn: typing.Any) -> tuple[set[tuple[str, str]], list[str]]:
    durable = set()
    broken = []
    for record in txn.iter_invocations():
        journal = txn.journal(record.id)
        runs = {entry.completion_id: entry.name for entry in journal if isinstance(entry, e.Run)}
        durable.update(
            (record.id, runs[n.completion_id]) for n in journal if isinstance(n, e.Completion) and n.completion_id in runs
        )
        if record.is_exclusive and str(record.status) in ("ready", "backing-off", "suspended"):
            head = txn.inbox_head(record.target.service, record.target.key)
            if head is None or head[1] != record.id:
                broken.append(
                    f"{record.id} ({record.target.service}/{record.target.key}) is {record.status} "
                    f"but the key's inbox head is {head[1] if head else 'nobody'}"
                )
    return durable, broken


@dataclasses.dataclass(frozen=True)
class Execution:
    """One line of the step log: a `run` step ran in process `pid`."""

    pid: int
    invocation_id: str
    step: str
    subject: str


@dataclasses.dataclass(frozen=True)
class Kill:
    """A kill mark in the step log: `victim` (a pid, or None for the whole group) was about to be killed."""

    victim: int | None


def read_step_log(steps_log: pathlib.Path) -> list[Execution | Kill]:
    if not steps_log.exists():
        return []
    events: list[Execution | Kill] = []
    for line in steps_log.read_text().splitlines():
        if line.startswith(KILL_MARK):
            victim = line.split()[1]
            events.append(Kill(None if victim == "*" else int(victim)))
        elif line:
            pid, invocation_id, step, subject = line.split(" ", 3)
            events.append(Execution(int(pid), invocation_id, step, subject))
    return events


def count_executions(steps_log: pathlib.Path) -> collections.Counter:
    return collections.Counter(
        (event.invocation_id, event.step) for event in read_step_log(steps_log) if isinstance(event, Execution)
    )


def snapshot(data_dir: pathlib.Path, steps_log: pathlib.Path) -> tuple[Snapshot, list[str]]:
    """What survived a kill. Storage first, then the log: a step durable in storage has already logged its run
    (the run precedes its journal write), so the count includes it even while other workers go on."""
    durable, broken = read_storage(data_dir)
    return Snapshot(durable, count_executions(steps_log)), broken


# --------------------------------------------------------------------------------------
# The run


@dataclasses.dataclass
class Chaos:
    """What the soak did to the server, and how it held up."""

    worker_kills: int = 0
    worker_kills_while_starting: int = 0  # the replacement of a killed worker, killed before /cluster listed it
    group_kills: int = 0
    group_kills_while_starting: int = 0
    restart_times: list[float] = dataclasses.field(default_factory=list)  # kill -> replacement listed in /cluster
    restarts_cut_short: int = 0  # by a group kill before the replacement was listed
    probes: int = 0
    probe_failures: int = 0
    probes_lost_with_a_replacement: int = 0  # in flight on a replacement (already serving) when the soak killed it
    probe_latencies: list[float] = dataclasses.field(default_factory=list)

    @property
    def kills(self) -> int:
        return self.worker_kills + self.group_kills


@dataclasses.dataclass
class Restart:
    """A single worker killed, until its replacement is listed in /cluster."""

    index: int
    kill_number: int
    victims: list[int]  # the killed pids: the worker, then any replacement killed while it started
    survivors: set[int]  # the other workers' pids
    killed_at: float  # when the last victim died
    # When each replacement killed while starting died. It may serve HTTP a moment before /cluster lists it, so a
    # probe in flight then may have been on it: its failure is the kill's doing, not a survivor's.
    replacements_killed: list[float] = dataclasses.field(default_factory=list)
    done: anyio.Event = dataclasses.field(default_factory=anyio.Event)
    scope: anyio.CancelScope = dataclasses.field(default_factory=anyio.CancelScope)


@dataclasses.dataclass
class Result:
    invocations: int
    requests: int
    accepted: int
    retries: int
    duration_s: float
    violations: list[str]
    counts: dict[str, int]
    chaos: Chaos


PROBE_TIMEOUT_S = 10.0  # a probe slower than this failed
MAX_PROBE_FAILURES_LISTED = 20  # the rest are counted (so that other violations still show)
RESTART_TIMEOUT_S = 60.0  # a worker not back in /cluster this long after its kill is a violation


class Killer:
    """Kills workers and the whole group at random moments; probes the survivors while a worker restarts."""

    def __init__(self, server: Server, model: Model, chaos: Chaos, rng: random.Random, data_dir: pathlib.Path) -> None:
        self.server = server
        self.model = model
        self.chaos = chaos
        self.rng = rng
        self.probe_rng = random.Random(rng.random())
        self.data_dir = data_dir
        self.snapshots: list[Snapshot] = []
        self.restart: Restart | None = None

    async def note_survivors(self, number: int) -> int:
        """After a kill, once the victims are dead: what storage holds now is what survived."""
        taken, broken = await anyio.to_thread.run_sync(snapshot, self.data_dir, self.server.steps_log)
        self.snapshots.append(taken)
        for problem in broken:
            self.model.violation(f"storage after kill {number}: {problem}")
        return len(taken.durable)

    @property
    def restarting(self) -> bool:
        return self.restart is not None and not self.restart.done.is_set()

    async def kill_group(self, number: int, total: int, ready: bool) -> None:
        if self.restarting:
            assert self.restart is not None
            self.restart.scope.cancel()  # its probes' answers would be lost to this kill, not to durio
            self.chaos.restarts_cut_short += 1
        self.restart = None
        await self.server.kill_group()
        self.chaos.group_kills += 1
        self.chaos.group_kills_while_starting += not ready
        durable = await self.note_survivors(number)
        print(
            f"kill {number}/{total}: the whole group{'' if ready else ' (while starting)'}: {durable} durable steps, "
            f"{self.model.requests} requests so far",
            flush=True,
        )

    async def kill_worker(self, number: int, total: int, nursery: anyio.abc.TaskGroup) -> None:
        restart = self.restart
        if restart is not None and not restart.done.is_set():
            starting = [pid for pid in self.server.children() if pid not in restart.survivors and pid not in restart.victims]
            if starting and self.rng.random() < EARLY_KILLS:
                # Harsher: the replacement dies while it recovers; the survivors must go on serving all the same.
                await self.server.kill_worker(starting[0])
                restart.victims.append(starting[0])
                restart.killed_at = time.monotonic()
                restart.replacements_killed.append(restart.killed_at)
                self.chaos.worker_kills += 1
                self.chaos.worker_kills_while_starting += 1
                durable = await self.note_survivors(number)
                print(
                    f"kill {number}/{total}: worker {restart.index} (pid {starting[0]}, while starting): {durable} "
                    f"durable steps, {self.model.requests} requests so far",
                    flush=True,
                )
                return
            await restart.done.wait()  # the watcher gives up (a violation) after RESTART_TIMEOUT_S
        pids = await self.server.worker_pids()
        if pids is None or not all(pids.values()):
            await self.server.wait_ready()
            pids = await self.server.worker_pids()
        assert pids is not None
        index, pid = self.rng.choice(sorted((index, pid) for index, pid in pids.items() if pid is not None))
        await self.server.kill_worker(pid)
        self.chaos.worker_kills += 1
        self.restart = Restart(index, number, [pid], {p for p in pids.values() if p not in (None, pid)}, time.monotonic())
        nursery.start_soon(self.watch_restart, self.restart)
        durable = await self.note_survivors(number)
        print(
            f"kill {number}/{total}: worker {index} (pid {pid}): {durable} durable steps, {self.model.requests} requests so far",
            flush=True,
        )

    async def watch_restart(self, restart: Restart) -> None:
        """Probe the surviving workers' partitions until the replacement is listed in /cluster."""
        with restart.scope:
            async with anyio.create_task_group() as probes:
                for _ in range(2):
                    probes.start_soon(self.probe, restart)
                while True:
                    pid = ((await self.server.worker_pids()) or {}).get(restart.index)
                    if pid is not None and pid not in restart.victims:
                        self.chaos.restart_times.append(time.monotonic() - restart.killed_at)
                        break
                    if time.monotonic() - restart.killed_at > RESTART_TIMEOUT_S:
                        self.model.violation(
                            f"worker {restart.index} was not listed in /cluster {RESTART_TIMEOUT_S:.0f} s "
                            f"after kill {restart.kill_number} (pids killed: {restart.victims})"
                        )
                        break
                    await anyio.sleep(0.02)
                probes.cancel_scope.cancel()
        restart.done.set()

    async def probe(self, restart: Restart) -> None:
        """Counter/<key>/peek for keys the surviving workers own, each over a fresh connection (any worker may get it)."""
        server = self.server
        keys = [key for key in PROBE_KEYS + COUNTERS if partition_owner(key, server.partitions, server.workers) != restart.index]
        table = PartitionTable(server.partitions, frozenset())
        async with httpx.AsyncClient(
            base_url=server.ingress_url, timeout=PROBE_TIMEOUT_S, limits=httpx.Limits(max_keepalive_connections=0)
        ) as client:
            while True:
                key = self.probe_rng.choice(keys)
                asked = time.monotonic()
                try:
                    response = await client.post(f"/restate/call/Counter/{key}/peek")
                    failure = None if response.status_code == 200 else f"answered {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    failure = f"failed: {type(exc).__name__} {exc}"
                answered = time.monotonic()
                latency = answered - asked
                self.chaos.probes += 1
                self.chaos.probe_latencies.append(latency)
                if failure is not None and any(asked <= killed <= answered for killed in restart.replacements_killed):
                    self.chaos.probes_lost_with_a_replacement += 1
                    failure = None
                if failure is not None:
                    self.chaos.probe_failures += 1
                if failure is not None and self.chaos.probe_failures <= MAX_PROBE_FAILURES_LISTED:
                    partition = table.of_key(ids.partition_key_of(key))
                    self.model.violation(
                        f"while worker {restart.index} restarted (kill {restart.kill_number}), "
                        f"Counter/{key}/peek (partition {partition}, worker "
                        f"{partition % server.workers}'s) {failure} after {latency:.2f} s"
                    )
                await anyio.sleep(0.01)


EARLY_KILLS = 0.15  # how often a kill hits a server (or a worker) that is still starting


async def soak(
    worker_kills: int,
    group_kills: int,
    seed: int,
    data_dir: pathlib.Path,
    *,
    workers: int = 2,
    partitions: int = 8,
    clients: int = 6,
    min_gap: float = 0.15,
    max_gap: float = 1.2,
    settle_timeout: float = 120.0,
) -> Result:
    started = time.monotonic()
    rng = random.Random(seed)
    work_dir = data_dir.parent
    steps_log = work_dir / "steps.log"
    server = Server(data_dir, work_dir / "server.log", steps_log, workers, partitions)
    model = Model()
    chaos = Chaos()
    load = Load(server, model, rng)
    monkey = Killer(server, model, chaos, rng, data_dir)
    schedule = ["worker"] * worker_kills + ["group"] * group_kills
    rng.shuffle(schedule)
    await server.start()
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    timeout = httpx.Timeout(60.0, connect=2.0)
    async with httpx.AsyncClient(base_url=server.ingress_url, timeout=timeout, limits=limits) as client:
        async with anyio.create_task_group() as nursery:
            for _ in range(clients):
                nursery.start_soon(load.client_loop, client)
            ready = True
            for number, kind in enumerate(schedule, start=1):
                # A ready server runs a while; one still starting (opening its files, recovering) is killed sooner.
                await anyio.sleep(rng.uniform(min_gap, max_gap) if ready else rng.uniform(0.0, 0.6))
                try:
                    if kind == "worker":
                        if not ready:
                            await server.wait_ready()
                            ready = True
                        await monkey.kill_worker(number, len(schedule), nursery)
                        continue
                    await monkey.kill_group(number, len(schedule), ready)
                    if number < len(schedule) and rng.random() < EARLY_KILLS:
                        server.spawn()
                        ready = False
                        continue
                    await server.start()
                    ready = True
                except (ServerFailed, TimeoutError) as exc:
                    model.violation(f"after kill {number}: {exc}")
                    nursery.cancel_scope.cancel()
                    return Result(
                        0, model.requests, model.accepted, model.retries, time.monotonic() - started, model.violations, {}, chaos
                    )
            if not ready:
                await server.wait_ready()
            if monkey.restart is not None:
                await monkey.restart.done.wait()
            await anyio.sleep(0.5)
            load.stopping = True  # each client finishes (retries) the request it is on, then stops
    admin = httpx.Client(base_url=server.admin_url, timeout=60)
    try:
        invocations = settle(admin, settle_timeout, model)
        check(model, invocations, monkey.snapshots, read_step_log(steps_log), server)
    finally:
        admin.close()
        code = server.terminate()
    if chaos.probe_failures > MAX_PROBE_FAILURES_LISTED:
        model.violation(f"... and {chaos.probe_failures - MAX_PROBE_FAILURES_LISTED} more probes of surviving partitions failed")
    if code != 0:
        model.violation(f"the server exited with {code} on SIGTERM")
    problems = [line for line in server.output().splitlines() if "Traceback" in line or "crashed" in line]
    if problems:
        model.violation(f"the server logged {len(problems)} tracebacks or crashes (see {server.log_path}), first: {problems[0]}")
    counts = {
        "orders": len(model.orders),
        "additions": len(model.additions),
        "audit sends accepted": sum(model.audits.values()),
        "audit sends unanswered": sum(not v for v in model.audits.values()),
        "workflows": len(model.workflows),
        "unanswered sends that ran but were erased by a kill": len(model.ghosts),
    }
    return Result(
        len(invocations),
        model.requests,
        model.accepted,
        model.retries,
        time.monotonic() - started,
        model.violations,
        counts,
        chaos,
    )


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
                model.violation(
                    f"{invocation['id']} {invocation['target']} is still {invocation['status']} "
                    f"(retries {invocation['retry_count']}, last failure {invocation['last_failure']})"
                )
            return invocations
        time.sleep(0.2)


def check(
    model: Model, invocations: list[dict], snapshots: list[Snapshot], step_log: list[Execution | Kill], server: Server
) -> None:
    v = model.violation
    executions = [event for event in step_log if isinstance(event, Execution)]
    final = collections.Counter((x.invocation_id, x.step) for x in executions)
    by_target: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for invocation in invocations:
        by_target[(invocation["target_service_name"], invocation["target_handler_name"])].append(invocation)
        if invocation["status"] == "completed" and invocation["completion_result"] != "success":
            v(f"{invocation['id']} {invocation['target']} failed: {invocation.get('completion_failure')}")
    known = {
        ("Orders", "process"),
        ("Counter", "add"),
        ("Counter", "peek"),
        ("Audit", "record"),
        ("Payments", "confirm"),
        ("Onboarding", "run"),
        ("Onboarding", "verify"),
    }
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
        expected = {
            "order": order_id,
            "reservation": f"res-{order_id}",
            "charge": f"charged-{order['amount']}",
            "confirmation": "confirmed",
        }
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

    # Steps: at least once; at most once per lifetime of the process that ran them; never again once a kill found
    # them durable.
    for invocation in invocations:
        for step in STEPS.get((invocation["target_service_name"], invocation["target_handler_name"]), ()):
            key = (invocation["id"], step)
            if final[key] < 1:
                v(f"step {step} of {invocation['id']} never ran, yet the invocation completed")
            for number, taken in enumerate(snapshots):
                if key in taken.durable and final[key] != taken.executions[key]:
                    v(
                        f"step {step} of {invocation['id']} was durable at kill {number + 1} "
                        f"(ran {taken.executions[key]} times) but ran {final[key]} times in the end"
                    )
                    break
    for problem in reruns_in_one_process(executions) + overlapping_holders(step_log):
        v(problem)

    # A step may run for an invocation that storage does not have only when nobody was told it exists: a send
    # without an idempotency key whose 202 never arrived (the server may start such an invocation while its
    # creation is being committed, and the kill erased the creation).
    existing = {i["id"] for i in invocations}
    for x in executions:
        if x.invocation_id in existing:
            continue
        if x.step == "audit" and model.audits.get(x.subject) is False:
            model.ghosts.add(x.invocation_id)
            continue
        v(f"step {x.step} ran for {x.subject} in {x.invocation_id}, an invocation that does not exist")


def reruns_in_one_process(executions: list[Execution]) -> list[str]:
    """A step that ran twice in one process: it may run again only in a process that replaced a killed one."""
    checked_steps = {step for steps in STEPS.values() for step in steps}
    per_process = collections.Counter((x.invocation_id, x.step, x.pid) for x in executions if x.step in checked_steps)
    return [
        f"step {step} of {invocation_id} ran {runs} times in worker process {pid}"
        for (invocation_id, step, pid), runs in sorted(per_process.items())
        if runs > 1
    ]


def overlapping_holders(step_log: list[Execution | Kill]) -> list[str]:
    """Exclusive handlers of one key that overlapped: within a process, or in two processes while the first was not
    killed (a killed holder never logs its exit; its key's successor, in the replacement, takes the key over)."""
    problems = []
    holders: dict[str, tuple[int, str]] = {}  # key -> (pid, invocation) inside its lock step
    # Processes the soak has marked for a kill: the mark is written just before the kill, so a victim may still
    # log a line or two after it, dying; a holder among them holds nothing once a replacement runs.
    killed: set[int] = set()
    seen: set[int] = set()
    for event in step_log:
        if isinstance(event, Kill):
            killed |= seen if event.victim is None else {event.victim}
            holders = {key: held for key, held in holders.items() if held[0] not in killed}
            continue
        seen.add(event.pid)
        key = event.subject.split(":")[0]
        if event.step == "lock-enter":
            if key in holders and holders[key][0] in killed and holders[key][0] != event.pid:
                del holders[key]
            if key in holders:
                pid, holder = holders[key]
                where = f"in process {pid}" if pid == event.pid else f"in processes {pid} and {event.pid}, neither killed"
                problems.append(
                    f"two exclusive handlers of Counter/{key} ran at once {where}: {holder} and {event.invocation_id}"
                )
            holders[key] = (event.pid, event.invocation_id)
        elif event.step == "lock-exit" and holders.get(key) == (event.pid, event.invocation_id):
            del holders[key]
    return problems


def recovery_times(server_log: str) -> list[float]:
    """From the server's log: for each worker killed and restarted by the same supervisor, the time from the
    supervisor noticing its death to the replacement owning its partitions, less the delay the supervisor held
    the restart back (what a restart costs when it is not held back)."""

    def when(stamp: str) -> float:
        return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()

    pending: dict[str, tuple[float, float]] = {}  # worker index -> (death noticed, delay)
    times = []
    for line in server_log.splitlines():
        if _SUPERVISOR_STARTS.search(line):
            pending.clear()  # a group kill: the old supervisor restarts nothing
        elif (killed := _WORKER_KILLED.match(line)) is not None:
            pending[killed.group(2)] = (when(killed.group(1)), float(killed.group(3) or 0))
        elif (owns := _WORKER_OWNS.match(line)) is not None and owns.group(2) in pending:
            noticed, delay = pending.pop(owns.group(2))
            times.append(when(owns.group(1)) - noticed - delay)
    return times


def seconds(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s" if values else "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker-kills", type=int, default=50, help="kill -9s of a single worker process")
    parser.add_argument("--group-kills", type=int, default=10, help="kill -9s of the whole process group")
    parser.add_argument("--workers", type=int, default=2, help="the server's worker processes (--workers of durio serve)")
    parser.add_argument("--partitions", type=int, default=8, help="the partitions of the server's (new) data dir")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        default=None,
        help="the server's data dir (must not exist yet); default: a temporary folder, removed on success",
    )
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients")
    parser.add_argument("--max-gap", type=float, default=1.2, help="longest time between restarts and kills, in seconds")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.partitions < 1 or args.worker_kills < 0 or args.group_kills < 0:
        parser.error("--workers and --partitions must be at least 1, the numbers of kills at least 0")
    if args.worker_kills and args.workers < 2:
        parser.error("--worker-kills needs --workers 2 or more (one worker is the server itself: kill the group)")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    temporary = args.data_dir is None
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="durio-soak-")) / "data" if temporary else args.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        parser.error(f"{data_dir} is not empty: the soak checks everything in it")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"soak: seed {seed}, {args.workers} workers, {args.partitions} partitions, {args.worker_kills} worker kills, "
        f"{args.group_kills} group kills, data in {data_dir}",
        flush=True,
    )
    result = trio.run(
        lambda: soak(
            args.worker_kills,
            args.group_kills,
            seed,
            data_dir,
            workers=args.workers,
            partitions=args.partitions,
            clients=args.clients,
            max_gap=args.max_gap,
        )
    )
    chaos = result.chaos
    log = (data_dir.parent / "server.log").read_text(errors="replace") if (data_dir.parent / "server.log").exists() else ""
    delayed = [float(delay) for delay in _RESTART_DELAY.findall(log) if float(delay) > 0]
    print(
        f"soak: survived {chaos.kills} kills; checked {result.invocations} invocations "
        f"({', '.join(f'{k} {n}' for k, n in result.counts.items())}); {result.requests} requests, "
        f"{result.accepted} accepted, {result.retries} retried; {result.duration_s:.1f} s",
        flush=True,
    )
    print(
        f"soak: kills: {chaos.worker_kills} of single workers ({chaos.worker_kills_while_starting} of them while the "
        f"worker was starting), {chaos.group_kills} of the whole group ({chaos.group_kills_while_starting} while it was "
        f"starting)",
        flush=True,
    )
    print(
        f"soak: restarts of single workers (kill -> replacement listed in /cluster): {len(chaos.restart_times)}, "
        f"{seconds(chaos.restart_times)}; {chaos.restarts_cut_short} cut short by a group kill; "
        f"{len(delayed)} restarts the supervisor held back (a worker that died young: {seconds(delayed)}); "
        f"without the hold, death -> partitions owned: {seconds(recovery_times(log))}",
        flush=True,
    )
    print(
        f"soak: probes of the surviving workers' partitions during restarts: {chaos.probes}, {chaos.probe_failures} "
        f"failed ({chaos.probes_lost_with_a_replacement} more cut off by the kill of a replacement they may have reached); "
        f"latency {seconds(chaos.probe_latencies)}",
        flush=True,
    )
    if result.violations:
        print(f"soak: {len(result.violations)} VIOLATIONS (seed {seed}, files in {data_dir.parent}):")
        for line in result.violations[:200]:
            print(f"  - {line}")
        return 1
    print("soak: OK, every accepted invocation completed exactly once, and the surviving workers' partitions never failed")
    if temporary:
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
