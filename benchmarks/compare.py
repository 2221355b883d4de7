"""`make bench-compare`: the `make bench` workloads on durio and on the official Restate server, row by row.

    .venv/bin/python benchmarks/compare.py [--duration 5] [--warmup 1] [--concurrency 1,16,64]
                                           [--workloads noop,steps,...] [--skip-ceilings] [--sdk-workers 1]

1. Ceilings, exactly as run.py measures them (run.run_ceilings).
2. Both systems start and stay up for the whole run, on loopback only:
   - durio as `make bench` runs it: `python -m durio.cli serve benchmarks/durio_app.py
     --workers W` (--durio-workers, default auto: one worker process per usable CPU, as
     `durio serve` defaults) in a fresh data directory, fsync on (its default);
   - Restate as its users run it: the official restate-server (.tools/restate, from npm)
     with its defaults except loopback bind addresses, a fresh --base-dir and telemetry off;
     bench_services.py served by the official restate-sdk under hypercorn with the
     production settings of the SDK's docs (restate_app.py), registered through the admin
     API as plain http://, which the server reaches over HTTP/2 cleartext, and the SDK
     then serves in bidi streaming mode.
3. A smoke pass: every workload briefly on both, so a workload that fails on either shows
   before anything is measured (the errors are printed and kept in the JSON).
4. For each workload and concurrency: the durio row, then the Restate row (alternating),
   each a warm-up and a measured window of the same load generator with the same settings.
   Per row: req/s, p50, p99 from the client; RSS of every process of the system at the row's
   end; CPU seconds of every process over exactly the measured window, per 1,000 requests.
   For durio that is the supervising parent and every worker; for Restate both the
   restate-server process and the SDK's hypercorn processes count, and each is also reported
   on its own; the idle system's CPU during the other's window is kept too (both share the
   machine's cores), and so is the load generator's own CPU over the same window.
5. One table on stdout, then the rows at the highest concurrency against the goal (>= 3x
   Restate's throughput with a lower p99), with the CPU both sides and the load generator
   spent per 1,000 requests and the most the machine's cores could give durio at those costs;
   everything in benchmarks/results/compare-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import http.client
import importlib.metadata
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402  (the ceilings, the parser, the data directory's place: shared with `make bench`)
from machine import REPO, filesystem_type, machine_info, machine_state, state_line  # noqa: E402
from processes import ServerDied, ServerProcess, die_with_parent, free_ports  # noqa: E402
from procstats import (  # noqa: E402
    ProcessGone,
    machine_cpu_seconds,
    memory_megabytes,
    process_tree,
    run_queue_wait_between,
    tree_cpu_seconds,
    tree_run_queue_waits,
)
from report import ceiling_table, compare_table, error_notes, finish, goal_table, machine_line  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PYTHON = sys.executable
RESTATE_PACKAGES = REPO / ".tools" / "restate" / "node_modules" / "@restatedev"
# What start_restate sets and --restate-env may not change: loopback only, no telemetry.
FIXED_RESTATE_ENV = frozenset(
    {
        "RESTATE_DISABLE_TELEMETRY",
        "RESTATE_LISTEN_MODE",
        "RESTATE_INGRESS__BIND_ADDRESS",
        "RESTATE_ADMIN__BIND_ADDRESS",
        "RESTATE_BIND_ADDRESS",
        "RESTATE_ADVERTISED_ADDRESS",
    }
)
# The hidden first argument that makes this file the load generator of one row (see _loadgen_child).
LOADGEN_CHILD = "_loadgen-child"

# The SDK docs' production settings for hypercorn (docs.restate.dev, Python SDK, "Serving"): no stream
# cap below what the server opens, and connections to the server that never time out. The docs' example
# also sets `workers = 8`; --sdk-workers picks the count (default 1, hypercorn's own default, which is
# what `python -m hypercorn app:app` runs: one worker process under a supervisor).
HYPERCORN_SETTINGS = {
    "h2_max_concurrent_streams": 2147483647,
    "keep_alive_max_requests": 2147483647,
    "keep_alive_timeout": 2147483647,
}


# ------------------------------------------------------------------ the two systems


class System:
    """One system under test: its processes (components), its ingress URL, and how to stop it."""

    def __init__(self, name: str, url: str, components: dict[str, ServerProcess], urls: list[str] | None = None) -> None:
        """`urls`: every ingress the load is spread over (a cluster's nodes), `url` the first of them."""
        self.name = name
        self.url = url
        self.urls = urls or [url]
        self.components = components

    def check_alive(self) -> None:
        for server in self.components.values():
            server.check_alive()

    def process_groups(self) -> dict[str, list[int]]:
        """Each component's pid and its descendants (durio's workers; hypercorn's supervisor, worker, resource tracker)."""
        return {name: process_tree(server.pid) for name, server in self.components.items()}

    def roots(self) -> dict[str, int]:
        """Each component's own pid: its CPU is read over the tree under it, as it is at the moment of reading."""
        return {name: server.pid for name, server in self.components.items()}

    def stop(self) -> None:
        for server in reversed(list(self.components.values())):
            server.stop()


def start_durio(
    data_dir: pathlib.Path, logs: pathlib.Path, backend: str, workers: str, name: str = "durio"
) -> tuple[System, dict[str, typing.Any]]:
    """durio exactly as run.py starts it for `make bench`, on one backend, with `workers` (a number or auto)."""
    ingress, admin = free_ports(2)
    argv = [
        PYTHON,
        "-m",
        "durio.cli",
        "serve",
        str(HERE / "durio_app.py"),
        "--data-dir",
        str(data_dir),
        "--ingress",
        f"127.0.0.1:{ingress}",
        "--admin",
        f"127.0.0.1:{admin}",
        "--backend",
        backend,
        "--workers",
        workers,
    ]
    server = ServerProcess(name, argv, logs / f"{name}.log")
    system = System(name, f"http://127.0.0.1:{ingress}", {"durio": server})
    expected = len(os.sched_getaffinity(0)) if workers == "auto" else int(workers)
    try:
        server.wait_until_answering(ingress, "/restate/health")
        # With several workers the ports answer as soon as one listens: wait until every worker owns its partitions.
        view: dict[str, typing.Any] = {}

        def all_workers_up() -> bool:
            nonlocal view
            status, body = _http("GET", admin, "/cluster")
            view = json.loads(body) if status == 200 else {}
            listed = view.get("nodes", [{}])[0].get("workers", []) if view else []
            return len(listed) == expected and all(w.get("pid") and not w.get("restarting") for w in listed)

        _wait_for(f"{name} did not show {expected} worker(s) on GET /cluster", all_workers_up, [server])
    except BaseException:
        system.stop()
        raise
    worker_view = [{key: w.get(key) for key in ("worker", "pid", "partitions")} for w in view["nodes"][0]["workers"]]
    return system, {
        "argv": argv,
        "admin_port": admin,
        "fsync": "durio default (on)",
        "workers_flag": workers,
        "workers": len(worker_view),
        "supervisor_pid": server.pid if len(worker_view) > 1 else None,
        "worker_processes": worker_view,
    }


def restate_server_binary() -> pathlib.Path:
    found = sorted(glob.glob(str(RESTATE_PACKAGES / "restate-server-*" / "bin" / "restate-server")))
    if not found:
        raise SystemExit(
            "compare: the official Restate server is not installed; `make bench-compare` "
            "installs it from the npm registry into .tools/restate"
        )
    return pathlib.Path(found[0])


def _http(method: str, port: int, path: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {"content-length": "0"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_for(what: str, check: typing.Callable[[], bool], servers: list[ServerProcess], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: typing.Any = None
    while time.monotonic() < deadline:
        for server in servers:
            server.check_alive()
        try:
            if check():
                return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise ServerDied(f"{what} within {timeout:.0f} s (last error: {last}); {servers[0].name}'s log:\n{servers[0].log_tail()}")


def start_restate(
    args: argparse.Namespace, base_dir: pathlib.Path, logs: pathlib.Path, work: pathlib.Path
) -> tuple[System, dict[str, typing.Any]]:
    """The official restate-server and the SDK on hypercorn, registered, and answering at the ingress."""
    binary = restate_server_binary()
    ingress, admin, node, sdk_port = free_ports(4)
    # Defaults, except where it listens (loopback only) and telemetry (off). LISTEN_MODE=tcp: no unix
    # sockets in the base dir next to the TCP ones (the tests set the same variables, bar the partitions).
    env = {
        "RESTATE_DISABLE_TELEMETRY": "true",
        "RESTATE_LISTEN_MODE": "tcp",
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{node}",
    }
    # Nothing inherited reconfigures it: RESTATE_* variables from the caller's environment are dropped;
    # --restate-env adds settings on purpose (for experiments; the JSON records them).
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("RESTATE_")}
    assert set(env) == FIXED_RESTATE_ENV
    env.update(args.restate_env)
    full_env = {**inherited, **env}
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=full_env).stdout.strip()
    config_dump = subprocess.run([str(binary), "--dump-config"], capture_output=True, text=True, env=full_env).stdout
    server_argv = [str(binary), "--base-dir", str(base_dir), "--no-logo"]

    hypercorn_settings = {"bind": f"127.0.0.1:{sdk_port}", **HYPERCORN_SETTINGS, "workers": args.sdk_workers}
    hypercorn_config = work / "hypercorn-config.toml"
    hypercorn_config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in hypercorn_settings.items()))
    sdk_argv = [PYTHON, "-m", "hypercorn", "--config", str(hypercorn_config), f"{HERE / 'restate_app.py'}:app"]

    server = ServerProcess("restate-server", server_argv, logs / "restate-server.log", env, inherit_env=inherited)
    components = {"restate-server": server}
    system = System("restate", f"http://127.0.0.1:{ingress}", components)
    try:
        components["sdk"] = ServerProcess(
            "restate-sdk on hypercorn", sdk_argv, logs / "restate-sdk.log", {"PYTHONUNBUFFERED": "1"}
        )
        server.wait_until_answering(admin, "/health")
        components["sdk"].wait_until_answering(sdk_port, "/health")
        # Registration: the plain default (no use_http_11), so the server speaks HTTP/2 cleartext to the SDK.
        status, body = _http("POST", admin, "/deployments", json.dumps({"uri": f"http://127.0.0.1:{sdk_port}"}).encode(), 60)
        if status not in (200, 201):
            raise ServerDied(f"registering the deployment: HTTP {status} {body[:500]!r}")
        registered = json.loads(body)
        status, body = _http("GET", admin, f"/deployments/{registered['id']}")
        deployment = json.loads(body) if status == 200 else {"error": f"HTTP {status}"}
        _wait_for(
            "the Restate ingress did not answer Noop/noop with 200",
            lambda: _http("POST", ingress, "/restate/call/Noop/noop")[0] == 200,
            [server, components["sdk"]],
        )
    except BaseException:
        system.stop()
        raise

    import restate_app  # the same module the SDK serves: which handlers it adjusted (see its docstring)

    info = {
        "server_version": version,
        "server_binary": str(binary.relative_to(REPO)) if binary.is_relative_to(REPO) else str(binary),
        "server_argv": server_argv,
        "server_env": env,
        "server_env_changes": args.restate_env,
        "server_settings": "restate-server defaults, except the loopback bind addresses, listen mode tcp and "
        "telemetry off (the whole effective configuration is in config_dump)"
        + (f"; changed with --restate-env: {args.restate_env}" if args.restate_env else ""),
        "dropped_inherited_restate_env": sorted(key for key in os.environ if key.startswith("RESTATE_")),
        "base_dir_filesystem": filesystem_type(base_dir),
        "config_dump": config_dump,
        "sdk_version": importlib.metadata.version("restate-sdk"),
        "hypercorn_version": importlib.metadata.version("hypercorn"),
        "sdk_argv": sdk_argv,
        "hypercorn_settings": hypercorn_settings,
        "hypercorn_worker_class": "asyncio (hypercorn's default)",
        "registration": {"uri": f"http://127.0.0.1:{sdk_port}", "use_http_11": False},
        "deployment": {key: value for key, value in deployment.items() if key != "services"},
        "services": [service.get("name") for service in deployment.get("services", registered.get("services", []))],
        "sdk_adjustments": {"dataclass_input_serde": restate_app.DATACLASS_INPUTS},
    }
    return system, info


# ------------------------------------------------------------------ one row


LoadgenFailed = run.LoadgenFailed


def _memory(pids: list[int]) -> dict[str, float]:
    """Sum of VmRSS, RssAnon, RssFile over the processes, and of their PSS (shared pages split between them)."""
    total = {"rss_mb": 0.0, "anon_mb": 0.0, "file_mb": 0.0, "pss_mb": 0.0}
    for pid in pids:
        try:
            memory = memory_megabytes(pid)
        except ProcessGone:
            continue  # exited since the tree was read
        total["rss_mb"] += memory["rss"]
        total["anon_mb"] += memory.get("anon", 0.0)
        total["file_mb"] += memory.get("file", 0.0)
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as file:
                for line in file:
                    if line.startswith(b"Pss:"):
                        total["pss_mb"] += int(line.split()[1]) / 1024
                        break
        except OSError:
            pass
    return total


def measure_system(
    system: System,
    idle: System | None,
    scenario: dict[str, typing.Any],
    concurrency: int,
    args: argparse.Namespace,
    duration: float,
    warmup: float,
) -> dict[str, typing.Any]:
    """One row against `system`: loadgen in its own process, CPU of every process over the window, RSS at the end."""
    system.check_alive()
    groups = {f"{system.name}/{name}": pid for name, pid in system.roots().items()}
    idle_groups = {f"{idle.name}/{name}": pid for name, pid in idle.roots().items()} if idle else {}
    job = {
        "url": system.url if len(system.urls) == 1 else system.urls,
        "scenario": scenario,
        "concurrency": concurrency,
        "duration": duration,
        "warmup": warmup,
        "timeout": args.timeout,
        "groups": {**groups, **idle_groups},
        "measured": list(groups),
    }
    budget = warmup + duration + args.timeout + 60
    try:
        done = subprocess.run(
            [PYTHON, str(HERE / "compare.py"), LOADGEN_CHILD, json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=budget,
            preexec_fn=die_with_parent,
        )
    except subprocess.TimeoutExpired:
        raise LoadgenFailed(f"loadgen did not finish within {budget:.0f} s") from None
    system.check_alive()
    if done.returncode != 0:
        raise LoadgenFailed(f"loadgen exited with status {done.returncode}:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout)
    cpu_by_group = row.pop("server_cpu_by_group")
    cpu_by_process = row.pop("server_cpu_by_process")
    cycles = row["cycles"]
    components = {}
    for name, pids in system.process_groups().items():
        cpu = cpu_by_group.get(f"{system.name}/{name}")
        components[name] = {
            "pids": pids,
            **_memory(pids),
            "cpu_s": cpu,
            "cpu_s_per_1k": cpu / cycles * 1000 if cpu is not None and cycles else None,
            "cpu_s_by_pid": cpu_by_process.get(f"{system.name}/{name}", {}),
        }
    row["components"] = components
    row["server_rss_mb"] = sum(part["rss_mb"] for part in components.values())
    row["server_rss_anon_mb"] = sum(part["anon_mb"] for part in components.values())
    row["server_rss_file_mb"] = sum(part["file_mb"] for part in components.values())
    row["server_pss_mb"] = sum(part["pss_mb"] for part in components.values())
    cpu = row.get("server_cpu_s")
    row["server_cpu_s_per_1k"] = cpu / cycles * 1000 if cpu is not None and cycles else None
    row["idle_system_cpu_s"] = {group: cpu_by_group.get(group) for group in idle_groups}
    # The machine is shared: what its cores did besides the measured system, the idle one and the client.
    machine = row.get("machine_cpu_s")
    if machine and cpu is not None and row.get("client_cpu_s") is not None and row["duration_s"]:
        ours = cpu + row["client_cpu_s"] + sum(value or 0.0 for value in row["idle_system_cpu_s"].values())
        row["machine_busy_cores"] = machine["busy"] / row["duration_s"]
        row["other_work_cores"] = max(0.0, machine["busy"] - ours) / row["duration_s"]
        row["steal_cores"] = machine["steal"] / row["duration_s"]
        row["run_queue_wait_threads"] = row["server_run_queue_wait_s"] / row["duration_s"]
    return row


def _loadgen_child(job: dict[str, typing.Any]) -> int:
    """Run loadgen.run_load for one row, reading the CPU time of every watched process at the window's edges.

    loadgen reads one process tree's CPU (--watch-pid) exactly when the measured
    window opens and closes; here that read covers several trees (a component and
    every process under it, read afresh at each edge, so a worker restarted in
    the window counts too): it returns the sum over the measured system's trees
    (loadgen's server_cpu_s) and keeps each tree's reading, and each process's, for
    the breakdown. loadgen's own CPU over the window is its client_cpu_s.
    """
    import loadgen
    from scenario import parse_scenario

    groups: dict[str, int] = job["groups"]
    readings: list[dict[str, tuple[float, dict[int, float]] | None]] = []
    machine: list[dict[str, float]] = []
    waits: list[dict[tuple[int, int], float]] = []

    def read_groups(_pid: int | None) -> float | None:
        reading: dict[str, tuple[float, dict[int, float]] | None] = {}
        for group, root in groups.items():
            try:
                reading[group] = tree_cpu_seconds(root)
            except ProcessGone:
                reading[group] = None  # the component itself exited: its CPU is unknown
        readings.append(reading)
        machine.append(machine_cpu_seconds())
        waits.append({thread: wait for group in job["measured"] for thread, wait in tree_run_queue_waits(groups[group]).items()})
        measured = [reading[group] for group in job["measured"]]
        return None if any(value is None for value in measured) else sum(value[0] for value in measured)  # type: ignore[index]

    loadgen._cpu_or_none = read_groups  # loadgen calls it twice: as the window opens and as it closes
    summary = loadgen.run_load(
        job["url"],
        parse_scenario(job["scenario"]),
        concurrency=job["concurrency"],
        duration=job["duration"],
        warmup=job["warmup"],
        timeout=job["timeout"],
        watch_pid=0,
    )
    by_group: dict[str, float | None] = {}
    by_process: dict[str, dict[int, float]] = {}
    if len(readings) == 2:
        before, after = readings
        for group in groups:
            first, last = before[group], after[group]
            by_group[group] = None if first is None or last is None else last[0] - first[0]
            if first is not None and last is not None:  # processes alive at both edges; a new one from zero
                by_process[group] = {pid: cpu - first[1].get(pid, 0.0) for pid, cpu in last[1].items()}
    summary["server_cpu_by_group"] = by_group
    summary["server_cpu_by_process"] = by_process
    if len(machine) == 2:
        summary["machine_cpu_s"] = {kind: machine[1][kind] - machine[0][kind] for kind in machine[0]}
        summary["server_run_queue_wait_s"] = run_queue_wait_between(waits[0], waits[1])
    print(json.dumps(summary))
    return 0


# ------------------------------------------------------------------ the run


def run_smoke(systems: list[System], args: argparse.Namespace, smoke: list[dict[str, typing.Any]]) -> None:
    """Every workload briefly on every system (2 connections, 0.5 s), before anything is measured."""
    for name in args.workloads:
        for system in systems:
            others = [other for other in systems if other is not system]
            row = measure_system(system, others[0] if others else None, WORKLOADS[name].scenario, 2, args, 0.5, 0.2)
            smoke.append({"workload": name, "system": system.name, **row})
            if row["errors"] or not row["cycles"]:
                reasons = "; ".join(f"{count} x {reason}" for reason, count in row["error_reasons"].items())
                run.progress(f"  SMOKE: {name} on {system.name}: {row['cycles']} ok, {row['errors']} errors {reasons}")


def run_pairs(durio: System, restate: System, args: argparse.Namespace, pairs: list[dict[str, typing.Any]]) -> None:
    """For each workload and concurrency: durio's row, then Restate's, with the same scenario and settings."""
    for name in args.workloads:
        scenario = WORKLOADS[name].scenario
        for concurrency in args.concurrency:
            pair: dict[str, typing.Any] = {"workload": name, "concurrency": concurrency}
            pairs.append(pair)
            for system, other, key in ((durio, restate, "durio"), (restate, durio, "restate")):
                run.progress(f"  {name}, {concurrency} connections, {system.name} ...")
                pair[key] = measure_system(system, other, scenario, concurrency, args, args.duration, args.warmup)


def _env_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("RESTATE_"):
        raise argparse.ArgumentTypeError(f"expected RESTATE_<NAME>=<value>, got {text!r}")
    if key in FIXED_RESTATE_ENV:
        raise argparse.ArgumentTypeError(f"{key} is fixed (loopback only, telemetry off)")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = run.build_parser()
    parser.description = (
        "Run the `make bench` workloads against durio and against the official Restate server "
        "(restate-sdk on hypercorn), alternating row by row."
    )
    parser.add_argument(
        "--sdk-workers",
        type=int,
        default=1,
        help="hypercorn worker processes for the restate-sdk deployment (default 1, hypercorn's default; "
        "the SDK docs' production example uses 8)",
    )
    parser.add_argument(
        "--restate-env",
        type=_env_setting,
        action="append",
        default=[],
        metavar="RESTATE_X=VALUE",
        help="set a restate-server environment variable (repeatable; e.g. "
        "RESTATE_DEFAULT_NUM_PARTITIONS=2); by default it runs with its defaults",
    )
    parser.add_argument("--skip-smoke", action="store_true", help="skip the short all-workloads check on both systems")
    for action in parser._actions:
        if action.dest == "skip_ceilings":
            action.help = "measure durio and Restate only"
        elif action.dest == "keep_data":
            action.help = "keep the data directories (durio's, Restate's) and the servers' logs"
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.restate_env = dict(args.restate_env)
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)
    args.ceiling_duration = args.ceiling_duration or args.duration
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-compare-", dir=run._data_parent()))
    durio_data, restate_base, logs = work / "durio-data", work / "restate-base", work / "logs"
    logs.mkdir()
    document: dict[str, typing.Any] = {
        "kind": "bench-compare",
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "ceiling_duration_s": args.ceiling_duration,
            "concurrency": args.concurrency,
            "workloads": args.workloads,
            "timeout_s": args.timeout,
            "data_filesystem": filesystem_type(work),
            "order": "per (workload, concurrency): durio's row, then Restate's; both systems up for the whole run",
            "client": "benchmarks/loadgen.py (run_load), one thread per keep-alive HTTP/1.1 connection, closed loop",
            "cpu": "utime+stime from /proc/<pid>/stat of every process of the measured system (each component "
            "and its descendants, read afresh at each edge, plus the children they reaped in between), read "
            "as the measured window opens and closes; client_cpu_s: the load generator's own process over "
            "the same window",
            "durio_workers": args.durio_workers,
            "rss": "VmRSS summed over the system's processes at the end of the row (pss_mb in the JSON splits "
            "shared pages between them)",
        },
        "workloads": {name: WORKLOADS[name].description for name in args.workloads},
    }
    failure = None
    systems: list[System] = []
    try:
        if not args.skip_ceilings:
            run.progress("measuring the ceilings")
            run.run_ceilings(args, logs, document.setdefault("ceilings", []))
        run.progress(f"starting durio (data in {durio_data}) and Restate (base dir {restate_base})")
        # One backend: the one --backends names alone, else the benchmarks' default (run.BENCH_BACKEND).
        backend = args.backends[0] if len(args.backends) == 1 else run.BENCH_BACKEND
        durio, document["durio"] = start_durio(durio_data, logs, backend, args.durio_workers)
        systems.append(durio)
        restate, document["restate"] = start_restate(args, restate_base, logs, work)
        systems.append(restate)
        document["idle_before_rows"] = {
            system.name: {name: _memory(pids) for name, pids in system.process_groups().items()} for system in systems
        }
        if not args.skip_smoke:
            run.progress("smoke pass: every workload on both, 2 connections, 0.5 s")
            run_smoke(systems, args, document.setdefault("smoke", []))
        document["machine_before_rows"] = machine_state(work)
        run.progress("measuring, alternating durio and Restate row by row")
        run_pairs(durio, restate, args, document.setdefault("rows", []))
        document["machine_after_rows"] = machine_state(work)
    except (ServerDied, run.LoadgenFailed, ProcessGone) as exc:
        failure = exc
        document["failure"] = str(exc)
    except KeyboardInterrupt:
        run.progress("interrupted: servers stopped, nothing written")
        return 130
    finally:
        for system in reversed(systems):
            system.stop()
        if not args.keep_data and failure is None:
            shutil.rmtree(work, ignore_errors=True)
    return finish(document, started, "compare-", lambda: _print_report(document, args), failure, logs)


def _print_report(document: dict[str, typing.Any], args: argparse.Namespace) -> None:
    machine = document["machine"]
    print(f"\n{machine_line(machine)}")
    for when in ("before", "after"):
        if document.get(f"machine_{when}_rows"):
            print(f"{when} the rows: {state_line(document[f'machine_{when}_rows'])}")
    restate = document.get("restate")
    if restate:
        deployment = restate.get("deployment", {})
        workers = restate["hypercorn_settings"]["workers"]
        print(
            f"Restate: {restate['server_version']} (defaults, loopback), restate-sdk {restate['sdk_version']} on hypercorn "
            f"{restate['hypercorn_version']} ({workers} worker{'s' if workers != 1 else ''}), deployment "
            f"{deployment.get('protocol_type', '?')} over {deployment.get('http_version', '?')}"
            + (f"; settings changed: {restate['server_env_changes']}" if restate.get("server_env_changes") else "")
        )
    durio = document.get("durio")
    if durio:
        print(
            f"durio: --workers {durio['workers_flag']} = {durio['workers']} worker process(es)"
            + (" under a supervising parent" if durio["workers"] > 1 else " (the server's one process)")
        )
    print(
        f"{args.duration:g} s per row after {args.warmup:g} s warm-up; closed loop, one request in flight per connection; "
        f"durio fsync on; rows alternate durio, Restate\n"
    )
    pairs = document.get("rows", [])
    if pairs:
        print(compare_table(pairs))
        print(
            "(durio/Restate: ratio of req/s, above 1 means durio is faster. durio's RSS and CPU are its whole process "
            "tree (parent + workers); Restate's are restate-server + the SDK's hypercorn processes; loadgen: the "
            "load generator's own CPU in durio's / Restate's row.)"
        )
        top = max(pair["concurrency"] for pair in pairs)
        cores = document["machine"].get("usable_cpus") or document["machine"]["nproc"]
        print(
            f"\nAgainst the goal at {top} connections (>= 3x Restate's req/s with a lower p99), and what the {cores} cores allow:"
        )
        print(goal_table([pair for pair in pairs if pair["concurrency"] == top], cores))
        print(
            f"(bound: {cores} cores x 1000 / (durio CPU s/1k + loadgen CPU s/1k), the most durio could serve if it and "
            f"the load generator had every core to themselves at this row's costs; 'cores busy' = (durio + loadgen) "
            f"CPU s / window; 'other work cores': the rest of the machine's busy CPU in durio's window (other programs on this shared machine); "
            f"'waiting for a CPU': durio's threads that were runnable but not running, on average over the window. Above 3x Restate = 3x is within reach at these costs; below = it is not, "
            f"whatever durio does with its workers.)"
        )
        if any(pair["workload"] == "awakeable" for pair in pairs):
            print("(awakeable: a request is one cycle of 3 HTTP requests: send the waiter, resolve, attach)")
    ceilings = document.get("ceilings", [])
    if ceilings:
        print("\nCeilings, measured in the same run (same request as noop; the server does no work):")
        print(ceiling_table(ceilings))
    flat = [
        {**pair[key], "workload": f"{pair['workload']} on {key}"} for pair in pairs for key in ("durio", "restate") if key in pair
    ]
    smoke = [{**row, "workload": f"smoke {row['workload']} on {row['system']}"} for row in document.get("smoke", [])]
    notes = error_notes(smoke + flat + ceilings)
    if notes:
        print("\nErrors:\n" + notes)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == LOADGEN_CHILD:
        sys.exit(_loadgen_child(json.loads(sys.argv[2])))
    sys.exit(main())
