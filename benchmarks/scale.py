"""`make bench-scale`: how durio's costs grow with what it holds.

    .venv/bin/python benchmarks/scale.py [--sleepers 10000,100000] [--steps 10,100,1000,10000]
                                         [--recover 10000] [--keys 1000000] [--only sleepers,steps,...]

Each measurement runs against its own `durio serve benchmarks/scale_app.py`
subprocess (fsync on, as shipped; data directory on a real disk, never tmpfs),
driven over HTTP on 127.0.0.1 from this process:

1. sleepers  RSS with N invocations asleep (an hour-long durable sleep each):
             the idle server first, then N sent with bounded concurrency, then
             once every one is suspended: RSS, its heap part, KB per sleeper
             above idle, and a noop call's latency. The levels are cumulative on
             one server (10,000 then 90,000 more). Then the server is restarted
             on the same files and measured again.
2. steps     one invocation with N `ctx.run_typed` steps: time per step over the
             whole journal (mean per tenth of the journal, to see whether it
             grows with the journal's length), then a durable sleep that
             suspends it, so the N entries are replayed when the timer fires:
             the replay's time, from the timer's due time and inside the handler.
3. recovery  N invocations left waiting across a kill -9 on timers that are all
             due by the time the server restarts: time from the restart until
             the health endpoint answers, and until all N have completed.
4. keys      one small state value on each of N virtual-object keys (completed
             invocations purged at once, so what stays is the state): data.mdb's
             disk usage and logical size, bytes per key, and LMDB's own page
             count per database. Past --keys-budget seconds it stops at the next
             checkpoint and extrapolates linearly to N, and says so.

One table per measurement on stdout; everything in
benchmarks/results/scale-<UTC timestamp>.json. A measurement whose server dies
is reported with the end of the server's log, and the others still run; every
server is stopped at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import typing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from histogram import Histogram  # noqa: E402
from http_wire import ProtocolError, Response, ResponseReader, encode_request  # noqa: E402
from machine import REPO, filesystem_type, machine_info  # noqa: E402
from processes import ServerDied, ServerProcess, free_ports  # noqa: E402
from procstats import ProcessGone, process_tree  # noqa: E402
from report import RESULTS_DIR, _format, machine_line  # noqa: E402
from run import _data_parent  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
APP = HERE / "scale_app.py"
PYTHON = sys.executable
MEASUREMENTS = ("sleepers", "steps", "recovery", "keys")
MB = 1024 * 1024


class MeasurementFailed(Exception):
    """A measurement could not be completed (the server is alive but did not do what was asked)."""


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ HTTP


class ConnectionBroken(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, one request at a time (http_wire's parser)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.host = f"127.0.0.1:{port}"
        self.sock: socket.socket | None = None
        self.reader = ResponseReader()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        except OSError as exc:
            raise ConnectionBroken(f"connect: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = ResponseReader()
        return sock

    def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        return self.exchange(encode_request(method, path, self.host, body))

    def exchange(self, raw: bytes) -> Response:
        if self.sock is None:
            self.sock = self._connect()
        try:
            self.sock.sendall(raw)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionBroken("connection closed by the server")
                responses = self.reader.feed(data)
                if responses:
                    if not responses[0].keep_alive:
                        self.close()
                    return responses[0]
        except socket.timeout:
            self.close()
            raise ConnectionBroken("timeout") from None
        except (OSError, ProtocolError, ValueError) as exc:
            self.close()
            raise ConnectionBroken(f"{type(exc).__name__}: {exc}") from None
        except ConnectionBroken:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def http_get(port: int, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """One GET on a fresh connection (admin API, metrics, health)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(port: int, path: str, timeout: float = 120.0) -> typing.Any:
    status, body = http_get(port, path, timeout)
    if status != 200:
        raise MeasurementFailed(f"GET {path}: HTTP {status}: {body[:300]!r}")
    return json.loads(body)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def metrics(admin: int) -> dict[str, float]:
    """The Prometheus samples at /metrics, by name with labels (e.g. 'durio_invocations{status="suspended"}')."""
    status, body = http_get(admin, "/metrics")
    if status != 200:
        raise MeasurementFailed(f"GET /metrics: HTTP {status}")
    samples = {}
    for line in body.decode().splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def suspended_count(sample: dict[str, float]) -> int:
    return int(sample.get('durio_invocations{status="suspended"}', 0))


def completed_total(sample: dict[str, float]) -> int:
    return int(
        sample.get('durio_invocations_completed_total{outcome="success"}', 0)
        + sample.get('durio_invocations_completed_total{outcome="failure"}', 0)
    )


def parse_timestamp(text: str) -> float:
    """The admin API's '2026-11-25T00:18:47.844000000Z' as epoch seconds."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)


# ------------------------------------------------------------------ sending many requests


def send_many(
    port: int,
    first: int,
    count: int,
    make_request: typing.Callable[[int], bytes],
    expect: int,
    concurrency: int,
    server: ServerProcess,
    label: str,
    timeout: float = 60.0,
) -> dict[str, typing.Any]:
    """Send requests first..first+count-1, `concurrency` at a time (one thread per keep-alive connection).

    Nothing is retried: a request whose outcome is unknown (connection broken,
    timeout) or that got another status than `expect` counts as an error. The
    run stops early when the server dies (ServerDied is raised) or when errors
    pass 1 % of the requests.
    """
    counter = itertools.count(first)
    end = first + count
    histogram_per_thread = [Histogram() for _ in range(concurrency)]
    errors: dict[str, int] = {}
    ok = [0] * concurrency
    stop = threading.Event()
    lock = threading.Lock()
    max_errors = max(50, count // 100)

    def worker(index: int) -> None:
        connection = Connection(port, timeout)
        histogram = histogram_per_thread[index]
        clock = time.perf_counter_ns
        try:
            while not stop.is_set():
                i = next(counter)
                if i >= end:
                    return
                started = clock()
                try:
                    response = connection.exchange(make_request(i))
                except ConnectionBroken as exc:
                    reason = str(exc)
                else:
                    if response.status == expect:
                        histogram.record((clock() - started) // 1000)
                        ok[index] += 1
                        continue
                    reason = f"HTTP {response.status}: {response.body[:160].decode(errors='replace')}"
                with lock:
                    errors[reason] = errors.get(reason, 0) + 1
                    if sum(errors.values()) > max_errors:
                        stop.set()
                time.sleep(0.01)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"send-{i}", daemon=True) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    last_report = started
    try:
        while True:
            alive = [thread for thread in threads if thread.is_alive()]
            if not alive:
                break
            alive[0].join(0.5)
            if server.process.poll() is not None:
                stop.set()
                server.check_alive()
            now = time.perf_counter()
            if now - last_report >= 15:
                last_report = now
                done = sum(ok)
                progress(f"    {label}: {done:,}/{count:,} in {now - started:.0f} s ({done / (now - started):,.0f}/s)")
    finally:
        stop.set()
    elapsed = time.perf_counter() - started
    server.check_alive()
    histogram = Histogram()
    for part in histogram_per_thread:
        histogram.merge(part)
    done = sum(ok)
    if sum(errors.values()) > max_errors:
        raise MeasurementFailed(
            f"{label}: more than {max_errors} failed requests; the first reasons: "
            + "; ".join(f"{n} x {r}" for r, n in sorted(errors.items(), key=lambda x: -x[1])[:5])
        )
    return {
        "requested": count,
        "ok": done,
        "errors": sum(errors.values()),
        "error_reasons": errors,
        "elapsed_s": round(elapsed, 3),
        "per_s": round(done / elapsed, 1) if elapsed else None,
        "concurrency": concurrency,
        "p50_ms": histogram.percentile(0.5) / 1000,
        "p99_ms": histogram.percentile(0.99) / 1000,
        "max_ms": histogram.max_us / 1000,
    }


def probe_latency(ingress: int, count: int) -> dict[str, typing.Any]:
    """`count` sequential noop calls on one keep-alive connection: how fast the server answers now."""
    connection = Connection(ingress, 30.0)
    raw = encode_request("POST", "/restate/call/Noop/noop", connection.host, None)
    samples = []
    failures = 0
    try:
        for _ in range(count):
            started = time.perf_counter()
            try:
                response = connection.exchange(raw)
                if response.status != 200 or response.body != b'"ok"':
                    failures += 1
                    continue
            except ConnectionBroken:
                failures += 1
                continue
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    samples.sort()
    if not samples:
        return {"calls": count, "failures": failures}
    return {
        "calls": count,
        "failures": failures,
        "p50_ms": round(samples[len(samples) // 2], 3),
        "p99_ms": round(samples[min(len(samples) - 1, len(samples) * 99 // 100)], 3),
        "max_ms": round(samples[-1], 3),
    }


# ------------------------------------------------------------------ servers


class Servers:
    """Every durio server started by this run: so all of them are stopped at the end, whatever happens."""

    def __init__(self, logs: pathlib.Path) -> None:
        self.logs = logs
        self.started: list[ServerProcess] = []

    def start(self, name: str, data_dir: pathlib.Path, timeout: float = 120.0) -> tuple[ServerProcess, int, int, float]:
        """Start `durio serve scale_app.py` on fresh loopback ports; return it, its ports, and the
        seconds from launch until both its ingress and admin answer /health."""
        ingress, admin = free_ports(2)
        argv = [
            PYTHON,
            "-m",
            "durio.cli",
            "serve",
            str(APP),
            "--data-dir",
            str(data_dir),
            "--ingress",
            f"127.0.0.1:{ingress}",
            "--admin",
            f"127.0.0.1:{admin}",
        ]
        log_path = self.logs / f"{name}.log"
        launched = time.perf_counter()
        server = ServerProcess(name, argv, log_path, env={"PYTHONUNBUFFERED": "1"})
        self.started.append(server)
        deadline = launched + timeout
        for port, path in ((ingress, "/restate/health"), (admin, "/health")):
            while True:
                server.check_alive()
                try:
                    if http_get(port, path, timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.perf_counter() > deadline:
                    raise ServerDied(f"{name} did not answer GET {path} within {timeout:.0f} s; its log:\n{server.log_tail()}")
                time.sleep(0.01)
        return server, ingress, admin, time.perf_counter() - launched

    def stop_all(self) -> None:
        for server in self.started:
            server.stop(grace=60)


def kill9(server: ServerProcess) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    server.stop()  # closes its log


def memory(pid: int) -> dict[str, float]:
    """From /proc/<pid>/status of the server and every process under it (`durio serve` forks a worker per
    CPU by default), summed, in MiB: rss (VmRSS), anon (RssAnon: the heap), file (RssFile: mostly LMDB's
    map, which each worker that touches a page counts again), peak (VmHWM: the sum of each process's
    highest RSS so far, an upper bound of the tree's peak)."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "VmHWM:": "peak"}
    found: dict[str, float] = {}
    for index, member in enumerate(process_tree(pid)):
        mine = {}
        try:
            with open(f"/proc/{member}/status") as file:
                for line in file:
                    name = fields.get(line.split(None, 1)[0] if line.strip() else "")
                    if name:
                        mine[name] = int(line.split()[1]) / 1024
        except FileNotFoundError:
            mine = {}
        if "rss" not in mine:  # gone, or a zombie
            if index == 0:
                raise ProcessGone(pid)
            continue
        for name, value in mine.items():
            found[name] = found.get(name, 0.0) + value
    return {name: round(value, 1) for name, value in found.items()}


def data_file(data_dir: pathlib.Path) -> pathlib.Path:
    found = sorted(data_dir.rglob("data.mdb"))
    if not found:
        raise MeasurementFailed(f"no data.mdb under {data_dir}")
    return found[0]


def file_sizes(path: pathlib.Path) -> dict[str, int]:
    st = path.stat()
    return {"disk_bytes": st.st_blocks * 512, "logical_bytes": st.st_size}


def wait_until(
    condition: typing.Callable[[], bool], server: ServerProcess, timeout: float, what: str, interval: float = 1.0
) -> float:
    """Poll `condition` until true; the seconds it took. Raises if the server dies or time runs out."""
    started = time.perf_counter()
    while True:
        server.check_alive()
        if condition():
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise MeasurementFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------ 1. sleepers


def measure_sleepers(args: argparse.Namespace, servers: Servers, work: pathlib.Path, out: dict[str, typing.Any]) -> None:
    levels = sorted(set(args.sleepers))
    data_dir = work / "sleepers-data"
    server, ingress, admin, _ = servers.start("sleepers", data_dir)
    rows = out.setdefault("rows", [])
    probe_latency(ingress, 100)  # warm the code paths before the baseline
    time.sleep(1)
    idle = {
        "sleeping": 0,
        "label": "idle",
        "memory": memory(server.pid),
        "noop": probe_latency(ingress, args.probe_calls),
        "data_mdb": file_sizes(data_file(data_dir)),
    }
    rows.append(idle)
    progress(f"  idle: RSS {idle['memory']['rss']} MB, anon {idle['memory']['anon']} MB")
    send_raw = encode_request("POST", "/restate/send/Sleepy/sleep", f"127.0.0.1:{ingress}", None)
    sent = 0
    for level in levels:
        progress(f"  sending {level - sent:,} sleepers ({args.concurrency} connections) to reach {level:,}")
        creation = send_many(
            ingress, sent, level - sent, lambda i: send_raw, 202, args.concurrency, server, f"sleepers to {level:,}"
        )
        sent += creation["ok"]
        progress(
            f"    created {creation['ok']:,} in {creation['elapsed_s']:.1f} s ({creation['per_s']:,.0f}/s); "
            "waiting until all are suspended"
        )
        state: dict[str, typing.Any] = {}

        def all_suspended() -> bool:
            state["metrics"] = sample = metrics(admin)
            return suspended_count(sample) >= sent and sample.get("durio_active_actors", 1) == 0

        waited = wait_until(
            all_suspended, server, timeout=120 + level / 100, what=f"{sent:,} suspended invocations", interval=2.0
        )
        time.sleep(args.settle)
        mem = memory(server.pid)
        row = {
            "sleeping": sent,
            "label": f"{sent:,} asleep",
            "creation": creation,
            "all_suspended_after_s": round(waited, 1),
            "memory": mem,
            "noop": probe_latency(ingress, args.probe_calls),
            "memory_after_probe": memory(server.pid),
            "metrics": _interesting(state["metrics"]),
            "data_mdb": file_sizes(data_file(data_dir)),
        }
        row["admin"] = admin_timings(admin, server)
        _per_sleeper(row, idle, rows[-1])
        rows.append(row)
        progress(
            f"    {sent:,} asleep: RSS {mem['rss']} MB (anon {mem['anon']}), "
            f"{row['kb_per_sleeper_rss']} KB/sleeper RSS, {row['kb_per_sleeper_anon']} KB heap; "
            f"noop p50 {row['noop'].get('p50_ms')} ms"
        )
    if not args.no_restart:
        progress(f"  restarting the server on the same files with {sent:,} asleep")
        server.stop(grace=60)
        server, ingress, admin, ready_s = servers.start("sleepers-restarted", data_dir)
        time.sleep(args.settle)
        memory_at_health = memory(server.pid)  # before any admin call that scans every invocation
        state = {}

        def counted() -> bool:
            state["metrics"] = sample = metrics(admin)
            return suspended_count(sample) >= sent

        wait_until(counted, server, timeout=300, what="the restarted server to list the sleepers", interval=2.0)
        time.sleep(args.settle)
        mem = memory(server.pid)
        row = {
            "sleeping": sent,
            "label": f"{sent:,} asleep, restarted",
            "restart_to_health_s": round(ready_s, 2),
            "memory_before_admin_calls": memory_at_health,
            "memory": mem,
            "noop": probe_latency(ingress, args.probe_calls),
            "metrics": _interesting(state["metrics"]),
            "data_mdb": file_sizes(data_file(data_dir)),
        }
        row["admin"] = admin_timings(admin, server)
        _per_sleeper(row, idle)
        rows.append(row)
        progress(f"    restarted: health after {ready_s:.2f} s, RSS {mem['rss']} MB (anon {mem['anon']})")
    server.stop(grace=60)


def admin_timings(admin: int, server: ServerProcess) -> dict[str, typing.Any]:
    """How long the admin calls that scan every invocation take now (/metrics counts them by status, at most
    every 2 s; the invocations list reads all that match before it applies its limit), and the memory after."""
    time.sleep(2.1)  # past /metrics' status cache
    timings: dict[str, typing.Any] = {}
    for name, path in (("metrics_ms", "/metrics"), ("list_suspended_limit_10_ms", "/invocations?status=suspended&limit=10")):
        started = time.perf_counter()
        status, _ = http_get(admin, path, timeout=300)
        timings[name] = round((time.perf_counter() - started) * 1000, 1) if status == 200 else f"HTTP {status}"
    server.check_alive()
    timings["memory_after"] = memory(server.pid)
    return timings


def _per_sleeper(row: dict[str, typing.Any], idle: dict[str, typing.Any], previous: dict[str, typing.Any] | None = None) -> None:
    """KB per sleeper above the idle server; with `previous`, also the marginal cost of the sleepers added
    since that row (what each one more costs, without the fixed cost of having had thousands in flight)."""
    n = row["sleeping"]
    for part in ("rss", "anon"):
        above = row["memory"][part] - idle["memory"][part]
        row[f"kb_per_sleeper_{part}"] = round(above * 1024 / n, 2) if n else None
        if previous is not None and n > previous["sleeping"]:
            added = row["memory"][part] - previous["memory"][part]
            row[f"marginal_kb_per_sleeper_{part}"] = round(added * 1024 / (n - previous["sleeping"]), 2)


def _interesting(sample: dict[str, float]) -> dict[str, float]:
    names = (
        "durio_active_actors",
        "durio_timers_in_memory",
        "durio_storage_size_bytes",
        "durio_storage_map_size_bytes",
        'durio_invocations{status="suspended"}',
        "durio_invocations_created_total",
        "durio_writer_batches_total",
    )
    return {name: sample[name] for name in names if name in sample}


# ------------------------------------------------------------------ 2. time per step, and replay


def measure_steps(args: argparse.Namespace, servers: Servers, work: pathlib.Path, out: dict[str, typing.Any]) -> None:
    server, ingress, admin, _ = servers.start("steps", work / "steps-data")
    rows = out.setdefault("rows", [])
    probe_latency(ingress, 50)
    for n in args.steps:
        progress(f"  {n:,} steps, then a {args.replay_sleep_ms} ms durable sleep that forces a replay")
        connection = Connection(ingress, timeout=300 + n * 0.1)
        body = json.dumps({"n": n, "sleep_ms": args.replay_sleep_ms}).encode()
        started = time.time()
        try:
            response = connection.request("POST", "/restate/call/Steps/run", body)
        except ConnectionBroken as exc:
            server.check_alive()
            raise MeasurementFailed(f"Steps.run with n={n}: {exc}") from None
        finally:
            connection.close()
        answered = time.time()
        if response.status != 200:
            raise MeasurementFailed(f"Steps.run with n={n}: HTTP {response.status}: {response.body[:300]!r}")
        result = json.loads(response.body)
        live, replay = result["live"], result.get("replay")
        if replay is None or replay.get("steps") != n:
            raise MeasurementFailed(
                f"Steps.run with n={n} did not replay its {n} steps after the sleep (was it suspended?): {str(result)[:300]}"
            )
        invocation_id = (response.header(b"x-restate-id") or b"").decode()
        due = _sleep_due(admin, invocation_id)
        row = {
            "steps": n,
            "invocation_id": invocation_id,
            "call_s": round(answered - started, 3),
            "live": live,
            "replay": replay,
            "live_per_step_us": live["mean_us"],
            "live_first_tenth_us": live["tenths_mean_us"][0],
            "live_last_tenth_us": live["tenths_mean_us"][-1],
            "replay_in_handler_ms": round((replay["woken_at"] - replay["entered_at"]) * 1000, 3),
            "replay_per_entry_us": round((replay["woken_at"] - replay["entered_at"]) * 1e6 / (n + 3), 2),
            "sleep_due_at": due,
        }
        if due is not None:
            # From the moment the timer was due: the timer firing, the journal loaded from LMDB, the actor started.
            row["due_to_handler_ms"] = round((replay["entered_at"] - due) * 1000, 1)
            row["due_to_replayed_ms"] = round((replay["woken_at"] - due) * 1000, 1)
        rows.append(row)
        progress(
            f"    live {live['total_s']:.2f} s, {live['mean_us']:.0f} µs/step (first tenth {row['live_first_tenth_us']:.0f}, "
            f"last tenth {row['live_last_tenth_us']:.0f}); replay {row['replay_in_handler_ms']:.1f} ms in the handler, "
            f"{row.get('due_to_replayed_ms')} ms from the timer's due time"
        )
    server.stop(grace=60)


def _sleep_due(admin: int, invocation_id: str) -> float | None:
    """When the invocation's durable sleep was due (epoch s), from its journal on the admin API."""
    if not invocation_id:
        return None
    described = get_json(admin, f"/invocations/{invocation_id}")
    for entry in described.get("journal", []):
        if "wake_up_at" in entry:
            return parse_timestamp(entry["wake_up_at"])
    return None


# ------------------------------------------------------------------ 3. recovery after kill -9


def measure_recovery(args: argparse.Namespace, servers: Servers, work: pathlib.Path, out: dict[str, typing.Any]) -> None:
    n = args.recover
    data_dir = work / "recovery-data"
    server, ingress, admin, _ = servers.start("recovery", data_dir)
    probe_latency(ingress, 50)
    completed_before = completed_total(metrics(admin))  # the probe's noop calls
    # Every invocation sleeps until the same moment, chosen to come after all are created and the server is
    # killed; the restart waits for it, so after the restart every timer is due at once (the worst case).
    budget = args.recover_wake_s or max(20.0, n / 400 + 10)
    wake_at = time.time() + budget
    body = str(int(wake_at * 1000)).encode()
    raw = encode_request("POST", "/restate/send/Recover/run", f"127.0.0.1:{ingress}", body)
    progress(f"  sending {n:,} invocations that sleep until {budget:.0f} s from now")
    creation = send_many(ingress, 0, n, lambda i: raw, 202, args.concurrency, server, "recover")
    created = creation["ok"]
    progress(f"    created {created:,} in {creation['elapsed_s']:.1f} s; waiting until all are suspended")
    state: dict[str, typing.Any] = {}

    def all_waiting() -> bool:
        state["metrics"] = sample = metrics(admin)
        return suspended_count(sample) >= created and sample.get("durio_active_actors", 1) == 0

    try:
        wait_until(all_waiting, server, timeout=max(1.0, wake_at - time.time() - 1), what="all to be suspended", interval=0.5)
    except MeasurementFailed:
        progress("    not all suspended before the wake-up time: killing now anyway")
    before_kill = state.get("metrics") or metrics(admin)
    in_flight = created - (completed_total(before_kill) - completed_before)
    kill9(server)
    killed_at = time.time()
    progress(
        f"    kill -9 with {in_flight:,} in flight ({suspended_count(before_kill):,} suspended); "
        f"waiting {max(0.0, wake_at + 1 - time.time()):.1f} s for their timers to be due"
    )
    time.sleep(max(0.0, wake_at + 1 - time.time()))
    restarted_at = time.time()
    server, ingress, admin, ready_s = servers.start("recovery-restarted", data_dir)
    progress(f"    restarted: health after {ready_s:.2f} s; waiting until all {in_flight:,} complete")
    done: dict[str, typing.Any] = {}

    done["peak_actors"] = 0

    def all_completed() -> bool:
        done["metrics"] = sample = metrics(admin)
        done["peak_actors"] = max(done["peak_actors"], int(sample.get("durio_active_actors", 0)))
        return completed_total(sample) >= in_flight

    waited = wait_until(all_completed, server, timeout=args.recover_timeout, what=f"{in_flight:,} completions", interval=0.25)
    polled_s = time.time() - restarted_at
    listing = get_json(admin, f"/invocations?service=Recover&limit={created + 10}")
    finished = [parse_timestamp(v["completed_at"]) for v in listing["invocations"] if v.get("completed_at")]
    outputs = [v.get("output") for v in listing["invocations"]]
    wrong = created - sum(1 for v in listing["invocations"] if v.get("status") == "completed" and v.get("output") == "ok")
    recovered_line = re.findall(r"recovered (\d+) invocations and (\d+) messages", server.log_path.read_text(errors="replace"))
    out.update(
        {
            "in_flight": in_flight,
            "creation": creation,
            "wake_budget_s": round(budget, 1),
            "metrics_before_kill": _interesting(before_kill),
            "killed_at": killed_at,
            "restarted_at": restarted_at,
            "wake_at": wake_at,
            "restart_to_health_s": round(ready_s, 3),
            "restart_to_first_completed_s": round(min(finished) - restarted_at, 3) if finished else None,
            "restart_to_all_completed_s": round(max(finished) - restarted_at, 3) if finished else None,
            "restart_to_all_completed_polled_s": round(polled_s, 2),
            "waited_after_health_s": round(waited, 2),
            "restart_to_completed_percentiles_s": _percentiles([t - restarted_at for t in finished]),
            "completed_per_second_after_restart": _per_second([t - restarted_at for t in finished]),
            "completed": len(finished),
            "not_completed_or_wrong_output": wrong,
            "listed": len(outputs),
            "failures_after_restart": int(done["metrics"].get('durio_invocations_completed_total{outcome="failure"}', 0)),
            "recovered_log_line": recovered_line[-1] if recovered_line else None,
            "memory_after": memory(server.pid),
            "metrics_after": _interesting(done["metrics"]),
            "peak_active_actors_seen": done["peak_actors"],
        }
    )
    progress(
        f"    all completed {out['restart_to_all_completed_s']} s after the restart "
        f"(first at {out['restart_to_first_completed_s']} s); {wrong} wrong or missing"
    )
    if wrong:
        raise MeasurementFailed(f"{wrong} of {created} Recover invocations did not complete with 'ok' after the restart")
    server.stop(grace=60)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {f"p{p}": round(ordered[min(len(ordered) - 1, len(ordered) * p // 100)], 3) for p in (10, 25, 50, 75, 90, 99)}


def _per_second(values: list[float]) -> list[int]:
    """How many completed in each second after the restart: second 0, 1, 2, ..."""
    counts: list[int] = []
    for value in values:
        second = max(0, int(value))
        counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1
    return counts


# ------------------------------------------------------------------ 4. LMDB size per key


def key_checkpoints(total: int) -> list[int]:
    points = [p for p in (10_000, 50_000, 100_000) if p < total]
    points += list(range(200_000, total, 100_000))
    return sorted(set(points + [total]))


def measure_keys(args: argparse.Namespace, servers: Servers, work: pathlib.Path, out: dict[str, typing.Any]) -> None:
    total = args.keys
    service = "KvKept" if args.keys_keep_invocations else "Kv"
    data_dir = work / "keys-data"
    server, ingress, admin, _ = servers.start("keys", data_dir)
    host = f"127.0.0.1:{ingress}"
    out.update(
        {
            "target_keys": total,
            "service": service,
            "state": "one entry 'v' per key, the key's number as JSON (1 to 7 bytes); keys 'k0000000'.. (8 bytes)",
            "budget_s": args.keys_budget,
            "completed_invocations": "kept a day (durio's default)"
            if args.keys_keep_invocations
            else "purged 1 ms after completion (journal_retention)",
        }
    )
    checkpoints = out.setdefault("checkpoints", [])
    written = 0
    started = time.perf_counter()

    def request(i: int) -> bytes:
        return encode_request("POST", f"/restate/call/{service}/k{i:07d}/set", host, str(i).encode())

    for point in key_checkpoints(total):
        progress(f"  setting keys {written:,}..{point - 1:,}")
        sent = send_many(ingress, written, point - written, request, 200, args.concurrency, server, f"keys to {point:,}")
        written += sent["ok"]
        elapsed = time.perf_counter() - started
        sample = metrics(admin)
        checkpoint = {
            "keys": written,
            "elapsed_s": round(elapsed, 1),
            "chunk": sent,
            "data_mdb": file_sizes(data_file(data_dir)),
            "lmdb_used_bytes": int(sample.get("durio_storage_size_bytes", 0)),
            "map_size_bytes": int(sample.get("durio_storage_map_size_bytes", 0)),
            "memory": memory(server.pid),
        }
        checkpoint["disk_bytes_per_key"] = round(checkpoint["data_mdb"]["disk_bytes"] / written, 1)
        checkpoints.append(checkpoint)
        progress(
            f"    {written:,} keys after {elapsed:.0f} s ({sent['per_s']:,.0f} calls/s): data.mdb "
            f"{checkpoint['data_mdb']['disk_bytes'] / MB:.1f} MB on disk, {checkpoint['disk_bytes_per_key']} B/key"
        )
        if elapsed > args.keys_budget and written < total:
            progress(f"    past the {args.keys_budget:.0f} s budget: stopping at {written:,} keys, extrapolating to {total:,}")
            break
    for probe in (0, written - 1):
        view = get_json(admin, f"/state/{service}/k{probe:07d}")
        if view.get("state") != {"v": probe}:
            raise MeasurementFailed(f"state of k{probe:07d} is {view!r}, expected {{'v': {probe}}}")
    time.sleep(args.settle)  # let the last purges commit
    final = {"data_mdb_running": file_sizes(data_file(data_dir)), "metrics": _interesting(metrics(admin))}
    server.stop(grace=60)
    final["data_mdb_stopped"] = file_sizes(data_file(data_dir))
    final["lmdb"] = lmdb_breakdown(data_file(data_dir).parent)
    disk = final["data_mdb_stopped"]["disk_bytes"]
    logical = final["data_mdb_stopped"]["logical_bytes"]
    scale = total / written if written else 0
    out.update(
        {
            "keys_written": written,
            "extrapolated": written < total,
            "final": final,
            "disk_bytes_per_key": round(disk / written, 1),
            "logical_bytes_per_key": round(logical / written, 1),
            "state_db_bytes_per_key": round(final["lmdb"]["databases"]["state"]["bytes"] / written, 1),
            "projected_disk_bytes": int(disk * scale),
            "projected_logical_bytes": int(logical * scale),
        }
    )


def lmdb_breakdown(env_dir: pathlib.Path) -> dict[str, typing.Any]:
    """Pages and entries of every named database, read-only, once the server has stopped."""
    import lmdb  # durio's own dependency

    env = lmdb.open(str(env_dir), readonly=True, lock=False, max_dbs=64)
    try:
        info, main = env.info(), env.stat()
        page = main["psize"]
        databases = {}
        accounted = main["branch_pages"] + main["leaf_pages"] + main["overflow_pages"]
        with env.begin() as txn:
            names = [bytes(key) for key, _ in txn.cursor()]
            for name in names:
                try:
                    db = env.open_db(name, txn=txn, create=False)
                except lmdb.Error:
                    continue
                stat = txn.stat(db)
                pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
                accounted += pages
                databases[name.decode(errors="replace")] = {
                    "entries": stat["entries"],
                    "pages": pages,
                    "bytes": pages * page,
                    "depth": stat["depth"],
                }
        used = info["last_pgno"] + 1
        return {
            "page_size": page,
            "pages_used": used,
            "map_size": info["map_size"],
            "free_or_meta_pages": used - accounted,
            "databases": databases,
        }
    finally:
        env.close()


# ------------------------------------------------------------------ the report


def _n(value: typing.Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def print_report(document: dict[str, typing.Any]) -> None:
    machine = document["machine"]
    print(f"\n{machine_line(machine)}; fsync on, data on {document['settings']['durio_data_filesystem']}")
    results = document["results"]
    sleepers = results.get("sleepers", {})
    if sleepers.get("rows"):
        print("\n1. Invocations asleep (Sleepy.sleep: one durable sleep of an hour; every one suspended)")
        header = [
            "",
            "create s",
            "create/s",
            "all susp. s",
            "RSS MB",
            "anon MB",
            "file MB",
            "KB/sleeper RSS",
            "KB/sleeper anon",
            "Δ KB/sleeper anon",
            "peak RSS MB",
            "noop p50 ms",
            "noop p99 ms",
            "data.mdb MB",
        ]
        body = []
        for row in sleepers["rows"]:
            creation = row.get("creation", {})
            mem = row["memory"]
            body.append(
                [
                    row["label"],
                    _n(creation.get("elapsed_s"), 1),
                    _n(creation.get("per_s")),
                    _n(row.get("all_suspended_after_s", row.get("restart_to_health_s")), 1),
                    _n(mem["rss"], 1),
                    _n(mem.get("anon"), 1),
                    _n(mem.get("file"), 1),
                    _n(row.get("kb_per_sleeper_rss"), 2),
                    _n(row.get("kb_per_sleeper_anon"), 2),
                    _n(row.get("marginal_kb_per_sleeper_anon"), 2),
                    _n(mem.get("peak"), 1),
                    _n(row["noop"].get("p50_ms"), 2),
                    _n(row["noop"].get("p99_ms"), 2),
                    _n(row["data_mdb"]["disk_bytes"] / MB, 1),
                ]
            )
        print(_format(body, header))
        admin_rows = [row for row in sleepers["rows"] if "admin" in row]
        if admin_rows:
            print(
                "admin calls that scan every invocation: "
                + "; ".join(
                    f"{row['label']}: GET /metrics {_n(row['admin']['metrics_ms'])} ms, GET /invocations?status=suspended&limit=10 "
                    f"{_n(row['admin']['list_suspended_limit_10_ms'])} ms (anon after {_n(row['admin']['memory_after'].get('anon'), 1)} MB)"
                    for row in admin_rows
                )
            )
        print(
            "(KB/sleeper: above the idle server; Δ: per sleeper added since the row above; anon is the heap, file mostly "
            "LMDB's map; 'all susp. s' of the restarted row is the restart's time to health)"
        )
    steps = results.get("steps", {})
    if steps.get("rows"):
        print("\n2. One invocation of N ctx.run_typed steps (each journaled, fsync'd, before the next), then its replay")
        header = [
            "steps",
            "live s",
            "µs/step",
            "p50 µs",
            "p99 µs",
            "1st tenth µs",
            "last tenth µs",
            "replay ms",
            "µs/entry",
            "due→handler ms",
            "due→replayed ms",
        ]
        body = [
            [
                _n(row["steps"]),
                _n(row["live"]["total_s"], 2),
                _n(row["live"]["mean_us"]),
                _n(row["live"]["p50_us"]),
                _n(row["live"]["p99_us"]),
                _n(row["live_first_tenth_us"]),
                _n(row["live_last_tenth_us"]),
                _n(row["replay_in_handler_ms"], 1),
                _n(row["replay_per_entry_us"], 1),
                _n(row.get("due_to_handler_ms"), 1),
                _n(row.get("due_to_replayed_ms"), 1),
            ]
            for row in steps["rows"]
        ]
        print(_format(body, header))
        print(
            "(replay: from entering the handler to the sleep's return on the attempt after the suspension; due→: "
            "from the sleep's due time, so including the timer firing and loading the journal)"
        )
    recovery = results.get("recovery", {})
    if "restart_to_all_completed_s" in recovery:
        print("\n3. Recovery after kill -9 (every timer already due at the restart)")
        header = [
            "in flight",
            "create s",
            "restart→health s",
            "→first done s",
            "→half done s",
            "→all done s",
            "completed",
            "wrong",
            "peak actors",
            "RSS after MB",
            "anon MB",
            "peak RSS MB",
        ]
        mem = recovery["memory_after"]
        print(
            _format(
                [
                    [
                        _n(recovery["in_flight"]),
                        _n(recovery["creation"]["elapsed_s"], 1),
                        _n(recovery["restart_to_health_s"], 2),
                        _n(recovery["restart_to_first_completed_s"], 2),
                        _n(recovery.get("restart_to_completed_percentiles_s", {}).get("p50"), 2),
                        _n(recovery["restart_to_all_completed_s"], 2),
                        _n(recovery["completed"]),
                        _n(recovery["not_completed_or_wrong_output"]),
                        _n(recovery.get("peak_active_actors_seen")),
                        _n(mem["rss"], 1),
                        _n(mem.get("anon"), 1),
                        _n(mem.get("peak"), 1),
                    ]
                ],
                header,
            )
        )
        if recovery.get("completed_per_second_after_restart"):
            print(
                "completions per second after the restart: " + " ".join(map(str, recovery["completed_per_second_after_restart"]))
            )
    keys = results.get("keys", {})
    if keys.get("checkpoints"):
        print(
            f"\n4. LMDB size with one small state value per key ({keys['service']}.set; completed invocations "
            f"{keys['completed_invocations']})"
        )
        header = [
            "keys",
            "elapsed s",
            "calls/s",
            "data.mdb disk MB",
            "file size MB",
            "LMDB used MB",
            "disk B/key",
            "RSS MB",
            "anon MB",
        ]
        body = [
            [
                _n(c["keys"]),
                _n(c["elapsed_s"]),
                _n(c["chunk"]["per_s"]),
                _n(c["data_mdb"]["disk_bytes"] / MB, 1),
                _n(c["data_mdb"]["logical_bytes"] / MB, 1),
                _n(c["lmdb_used_bytes"] / MB, 1),
                _n(c["disk_bytes_per_key"], 1),
                _n(c["memory"]["rss"], 1),
                _n(c["memory"].get("anon"), 1),
            ]
            for c in keys["checkpoints"]
        ]
        print(_format(body, header))
        if "final" in keys:
            lmdb_info = keys["final"]["lmdb"]
            parts = ", ".join(
                f"{name} {db['bytes'] / MB:.1f} MB ({db['entries']:,} entries)"
                for name, db in sorted(lmdb_info["databases"].items(), key=lambda x: -x[1]["bytes"])
                if db["pages"]
            )
            print(
                f"After a clean stop: data.mdb {keys['final']['data_mdb_stopped']['disk_bytes'] / MB:.1f} MB on disk, "
                f"{keys['final']['data_mdb_stopped']['logical_bytes'] / MB:.1f} MB file size: "
                f"{keys['disk_bytes_per_key']:,.0f} B/key on disk, {keys['logical_bytes_per_key']:,.0f} B/key logical; "
                f"the state database alone {keys['state_db_bytes_per_key']:,.0f} B/key.\n  By database: {parts}; "
                f"free or meta pages {lmdb_info['free_or_meta_pages']:,} of {lmdb_info['pages_used']:,}."
            )
            projected = (
                f"{keys['projected_disk_bytes'] / MB:,.1f} MB on disk, {keys['projected_logical_bytes'] / MB:,.1f} MB file size"
            )
            if keys["extrapolated"]:
                print(
                    f"  EXTRAPOLATED linearly from {keys['keys_written']:,} keys (the {keys['budget_s']:.0f} s budget ran out): "
                    f"{keys['target_keys']:,} keys ≈ {projected}."
                )
            else:
                print(f"  {keys['target_keys']:,} keys measured: {projected}.")
    for name, failure in document.get("failures", {}).items():
        print(f"\n{name} FAILED: {failure}")


# ------------------------------------------------------------------ main


def _int_list(text: str) -> list[int]:
    values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError("sizes must be positive (an empty list skips the measurement)")
    return values


def _measurement_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in MEASUREMENTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown measurement(s) {', '.join(unknown)}; known: {', '.join(MEASUREMENTS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="How durio's costs grow: sleepers, journal length, recovery, keys.")
    parser.add_argument(
        "--only",
        type=_measurement_list,
        default=list(MEASUREMENTS),
        help=f"comma-separated, from {','.join(MEASUREMENTS)} (default: all, in that order)",
    )
    parser.add_argument(
        "--sleepers",
        type=_int_list,
        default=[10_000, 100_000],
        help="cumulative numbers of sleeping invocations to measure at (default 10000,100000)",
    )
    parser.add_argument("--no-restart", action="store_true", help="sleepers: skip the restart with everyone asleep")
    parser.add_argument(
        "--steps",
        type=_int_list,
        default=[10, 100, 1_000, 10_000],
        help="journal lengths (run steps) to measure (default 10,100,1000,10000)",
    )
    parser.add_argument(
        "--replay-sleep-ms",
        type=int,
        default=2000,
        help="the durable sleep after the steps; above durio's 1 s suspension delay so it forces a replay",
    )
    parser.add_argument("--recover", type=int, default=10_000, help="invocations in flight at the kill -9 (default 10000)")
    parser.add_argument(
        "--recover-wake-s",
        type=float,
        help="their timers are due this long after the first is sent (default: max(20, N/400 + 10))",
    )
    parser.add_argument("--recover-timeout", type=float, default=600, help="seconds allowed for them to complete")
    parser.add_argument("--keys", type=int, default=1_000_000, help="virtual-object keys to write (default 1000000)")
    parser.add_argument(
        "--keys-budget",
        type=float,
        default=600,
        help="seconds of writing keys after which it stops at the next checkpoint and extrapolates (default 600)",
    )
    parser.add_argument(
        "--keys-keep-invocations",
        action="store_true",
        help="keys: keep completed invocations a day (durio's default) instead of purging them at once",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="connections for the bulk sends (default 64)")
    parser.add_argument("--probe-calls", type=int, default=300, help="sequential noop calls per latency probe (default 300)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before reading memory (default 3)")
    parser.add_argument("--keep-data", action="store_true", help="keep the data directories and server logs")
    return parser


def _exit_on_sigterm(signum: int, frame: typing.Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the servers


MEASURE = {"sleepers": measure_sleepers, "steps": measure_steps, "recovery": measure_recovery, "keys": measure_keys}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    skip = {"sleepers": not args.sleepers, "steps": not args.steps, "recovery": args.recover <= 0, "keys": args.keys <= 0}
    chosen = [name for name in MEASUREMENTS if name in args.only and not skip[name]]
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-scale-", dir=_data_parent()))
    logs = work / "logs"
    logs.mkdir()
    document: dict[str, typing.Any] = {
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            **{k: v for k, v in vars(args).items()},
            "measurements": chosen,
            "durio_data_filesystem": filesystem_type(work),
            "fsync": "durio default (on)",
            "app": "benchmarks/scale_app.py",
        },
        "results": {},
    }
    servers = Servers(logs)
    failed = False
    interrupted = 0
    try:
        for name in chosen:
            progress(f"{name} (data and logs in {work})")
            section: dict[str, typing.Any] = {}
            document["results"][name] = section
            measured = time.perf_counter()
            try:
                MEASURE[name](args, servers, work, section)
            except (ServerDied, MeasurementFailed, ProcessGone, OSError) as exc:
                failed = True
                document.setdefault("failures", {})[name] = f"{type(exc).__name__}: {exc}"
                progress(f"  {name} FAILED: {exc}")
            except Exception as exc:  # a bug in this script: keep the other measurements and say where
                failed = True
                document.setdefault("failures", {})[name] = traceback.format_exc()
                progress(f"  {name} FAILED with an unexpected {type(exc).__name__}:\n{traceback.format_exc()}")
            finally:
                servers.stop_all()
                section["measurement_s"] = round(time.perf_counter() - measured, 1)
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, or SIGTERM through _exit_on_sigterm
        interrupted = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
        servers.stop_all()
        progress("interrupted: servers stopped; the results so far follow")
        document["failures"] = {**document.get("failures", {}), "run": "interrupted"}
        failed = True
    finally:
        servers.stop_all()
        document["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"scale-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(document, indent=1, default=str) + "\n")
        if args.keep_data or failed:
            progress(f"data and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_report(document)
    print(f"\nresults: {path.relative_to(REPO)}")
    return interrupted or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
