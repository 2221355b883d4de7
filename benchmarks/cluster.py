"""`make bench-cluster`: durio on PostgreSQL (`durio serve --cluster`) against durio on LMDB alone, same run.

    .venv/bin/python benchmarks/cluster.py [--nodes 1,2,3] [--takeover] [--rounds 3] [--duration 3] [--warmup 1]
                                           [--concurrency 1,16] [--workloads noop,steps,counter_spread,caller]
                                           [--lease 10] [--partitions 24] [--backends uvloop]

1. A throwaway PostgreSQL, started as the cluster tests start theirs (tests/postgres.py: Debian's
   package, initdb in a temp dir on the data disk, loopback only, fsync on), one database per
   configuration.
2. PostgreSQL's own cost, before any server runs: the round trip of `SELECT 1`, and of one fenced
   batch as a node's writer ships it (durio.cluster's `PostgresDurability.ship`: the fence, the
   upsert, COMMIT, one pipelined round trip) of 1 and of 64 journal steps (two rows each).
3. The servers, all up for the whole run, each `python -m durio.cli serve benchmarks/durio_app.py
   --workers 1` on one backend (a cluster node runs one worker today, so the LMDB server does too):
   - `lmdb`: without --cluster, a fresh data directory (fsync on), as `make bench` runs it;
   - `pg-N` for every N of --nodes: N nodes with --cluster on their own database, distinct
     --node-name, ports and --advertise-url. The first must answer within 60 s; the others must
     answer, and every node hold a share of the partitions, within 30 s more, else the
     configuration is reported as not available and its nodes are stopped: no figures are made up.
     The load generator spreads its connections over the nodes (connection i to node i mod N).
4. Rounds as `make bench-workers` runs them (workers.run_rounds): every workload at every
   concurrency on every configuration, one row each, the order reversing every round. A
   configuration's CPU is its nodes' and, for pg-N, PostgreSQL's (the postmaster and its backends).
5. Medians over the rounds, PG/LMDB ratios, and the cost per group commit: at 1 connection every
   commit carries one invocation's step, so (p50 on PostgreSQL - p50 on LMDB) / (commits per
   invocation) is what shipping adds to each step's commit (with several nodes, forwarding between
   them is in that difference too).
6. --takeover: two nodes on a fresh database; `kill -9` of the one holding the partitions, then
   the time until every one of its partitions is owned by the other node (on PostgreSQL's clock,
   read from durio_partitions), and until the first invocation on a taken-over partition
   completes (a call on an object key of such a partition, retried at the other node's ingress).
   "not available" when nobody takes over within the lease + 30 s.
7. A table on stdout, everything in benchmarks/results/cluster-<UTC timestamp>.json.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import pathlib
import shutil
import signal
import statistics
import sys
import tempfile
import time
import typing

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import compare  # noqa: E402  (starting durio, one row with every process's CPU, a System)
import run  # noqa: E402  (the parser's shared flags, the data directory's place, progress)
import workers  # noqa: E402  (the rounds, the medians over them)
from machine import filesystem_type, machine_info, machine_state, state_line  # noqa: E402
from processes import ServerDied, ServerProcess, free_ports  # noqa: E402
from procstats import ProcessGone  # noqa: E402
from report import _format, _number, error_notes, finish, machine_line  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

from tests.postgres import Postgres, postgres_bin_dir  # noqa: E402

PYTHON = sys.executable
DEFAULT_WORKLOADS = ["noop", "steps", "counter_spread", "caller"]
FIRST_NODE_TIMEOUT_S = 60.0
OTHER_NODES_TIMEOUT_S = 30.0
RTT_BATCHES = 300


class PostgresProcess:
    """The benchmark's PostgreSQL as a component of a System: its postmaster, whose children are the backends."""

    def __init__(self, postgres: Postgres) -> None:
        self.postgres = postgres
        self.name = "postgresql"

    @property
    def pid(self) -> int:
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def check_alive(self) -> None:
        try:
            os.kill(self.pid, 0)
        except (OSError, ValueError):
            raise ServerDied(f"PostgreSQL is gone; its log ({self.postgres.log}):\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.postgres.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """The configuration is done with it; the server itself is stopped once, at the end of the run."""


# ------------------------------------------------------------------ PostgreSQL's own round trip


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure_round_trips(postgres: Postgres, partitions: int) -> dict[str, typing.Any]:
    """`SELECT 1`, and one fenced batch of 1 and of 64 journal steps, shipped as a node's writer ships it."""
    from durio.cluster.durability import connect
    from durio.cluster.node import ClusterOptions, _open_cluster
    from durio.cluster.schema import GLOBAL_PARTITION
    from durio.storage import schema as storage_schema

    dsn = _database(postgres, "durio_round_trip").dsn
    connection = connect(dsn)
    try:
        bare = []
        for _ in range(RTT_BATCHES):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            bare.append(time.perf_counter() - started)
    finally:
        connection.close()
    durability = _open_cluster(ClusterOptions(dsn, "round-trip", 60.0, partitions))
    figures: dict[str, typing.Any] = {"select_1": _timing(bare)}
    try:
        if durability.acquire({GLOBAL_PARTITION, *range(durability.partitions)}):
            raise RuntimeError("the round-trip measurement could not take its own leases")
        for steps in (1, 64):
            timings = []
            for _ in range(RTT_BATCHES):
                # What one journal step writes (as benchmarks/cluster_commit.py has it): an entry of ~200 bytes and
                # the invocation's record of ~300, keyed by an invocation id (its first 8 bytes: the partition key).
                writes: dict[tuple[bytes, bytes], bytes | None] = {}
                for _ in range(steps):
                    invocation = os.urandom(24)
                    writes[(storage_schema.JOURNAL, invocation + b"\0\0\0\1")] = os.urandom(200)
                    writes[(storage_schema.INVOCATIONS, invocation)] = os.urandom(300)
                started = time.perf_counter()
                durability.ship(writes)
                timings.append(time.perf_counter() - started)
            figures[f"fenced_batch_{steps}_steps"] = {**_timing(timings), "rows": steps * 2}
    finally:
        durability.close()
    return figures


def _timing(seconds: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(seconds) * 1000, "p99_ms": _percentile(seconds, 0.99) * 1000, "samples": len(seconds)}


def _database(postgres: Postgres, name: str) -> Postgres:
    postgres.sql(f'DROP DATABASE IF EXISTS "{name}"')
    postgres.sql(f'CREATE DATABASE "{name}"')
    return postgres.on_database(name)


# ------------------------------------------------------------------ nodes


def node_argv(data_dir: pathlib.Path, ports: list[int], backend: str, dsn: str, name: str, args: argparse.Namespace) -> list[str]:
    ingress, admin, peers = ports
    return [
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
        "1",
        "--cluster",
        dsn,
        "--node-name",
        name,
        "--cluster-lease",
        f"{args.lease:g}",
        "--partitions",
        str(args.partitions),
        "--advertise-url",
        f"http://127.0.0.1:{peers}",
    ]


class Node:
    def __init__(self, name: str, process: ServerProcess, ingress: int, admin: int) -> None:
        self.name = name
        self.process = process
        self.ingress = ingress
        self.admin = admin


def start_nodes(
    count: int, dsn: str, work: pathlib.Path, logs: pathlib.Path, backend: str, args: argparse.Namespace, prefix: str
) -> tuple[list[Node], str | None]:
    """Start the first node, then once it answers the others at once; returns them all, and why they are not all
    ready and sharing the partitions (None: they are). The first goes first: it creates the cluster's tables."""

    def start(index: int) -> Node:
        name = f"node-{index}"
        ports = free_ports(3)
        argv = node_argv(work / f"{prefix}-{name}", ports, backend, dsn, name, args)
        return Node(name, ServerProcess(f"{prefix} {name}", argv, logs / f"{prefix}-{name}.log"), ports[0], ports[1])

    nodes = [start(1)]
    try:
        nodes[0].process.wait_until_answering(nodes[0].ingress, "/restate/health", timeout=FIRST_NODE_TIMEOUT_S)
        nodes.extend(start(index) for index in range(2, count + 1))
        for node in nodes[1:]:
            try:
                node.process.wait_until_answering(node.ingress, "/restate/health", timeout=OTHER_NODES_TIMEOUT_S)
            except ServerDied:
                last = node.process.log_tail(3).strip().splitlines()
                return nodes, (
                    f"{node.name} did not become ready within {OTHER_NODES_TIMEOUT_S:.0f} s of the first "
                    f"node (its last log line: {last[-1] if last else '(none)'})"
                )
        # Ready is not settled: a node that joins takes its share of the partitions at its next heartbeats.
        deadline = time.monotonic() + OTHER_NODES_TIMEOUT_S
        while not _shared_fairly(holding := _holdings(dsn), {node.name for node in nodes}, args.partitions):
            if time.monotonic() > deadline:
                shares = ", ".join(f"{name} {held}" for name, held in sorted(holding.items())) or "nobody"
                return nodes, (
                    f"the partitions were not shared fairly by all {count} nodes within "
                    f"{OTHER_NODES_TIMEOUT_S:.0f} s (partitions held: {shares})"
                )
            time.sleep(0.2)
    except BaseException:
        for node in nodes:
            node.process.stop()
        raise
    return nodes, None


def _holdings(dsn: str) -> dict[str, int]:
    """How many partitions (the global rows aside) each node holds a valid lease on."""
    from durio.cluster.durability import connect

    connection = connect(dsn)
    try:
        rows = connection.execute(
            "SELECT split_part(owner, '@', 1), count(*) FROM durio_partitions "
            "WHERE pid >= 0 AND owner IS NOT NULL AND expires_at > now() GROUP BY 1"
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


def _shared_fairly(holding: dict[str, int], nodes: set[str], partitions: int) -> bool:
    """Every partition held, by these nodes only, none holding more than its fair share (no hand-over pending)."""
    return (
        set(holding) == nodes
        and sum(holding.values()) == partitions
        and max(holding.values()) <= math.ceil(partitions / len(nodes))
    )


def start_cluster(
    count: int, postgres: Postgres, work: pathlib.Path, logs: pathlib.Path, backend: str, args: argparse.Namespace
) -> tuple[compare.System | None, dict[str, typing.Any]]:
    """pg-N: N nodes on a database of their own, as one System (nodes + PostgreSQL), or None and why not."""
    name = f"pg-{count}"
    dsn = _database(postgres, f"durio_{count}_nodes").dsn
    run.progress(f"starting {name}: {count} node(s) with --cluster")
    nodes, not_ready = start_nodes(count, dsn, work, logs, backend, args, name)
    info: dict[str, typing.Any] = {
        "nodes_asked": count,
        "argv": [node.process.argv for node in nodes],
        "admin_ports": [node.admin for node in nodes],
        "lease_s": args.lease,
        "partitions": args.partitions,
    }
    if not_ready is not None:
        for node in nodes:
            node.process.stop()
        run.progress(f"  {name}: NOT AVAILABLE: {not_ready}")
        return None, {**info, "available": False, "reason": not_ready}
    urls = [f"http://127.0.0.1:{node.ingress}" for node in nodes]
    components: dict[str, typing.Any] = {node.name: node.process for node in nodes}
    components["postgresql"] = PostgresProcess(postgres)
    return compare.System(name, urls[0], components, urls=urls), {**info, "available": True}


# ------------------------------------------------------------------ takeover


def _owners(postgres: Postgres) -> list[tuple[int, str | None, bool]]:
    return [
        (pid, owner, bool(valid))
        for pid, owner, valid in postgres.sql(
            "SELECT pid, owner, coalesce(expires_at > now(), false) FROM durio_partitions ORDER BY pid"
        )
    ]


def measure_takeover(
    postgres: Postgres, work: pathlib.Path, logs: pathlib.Path, backend: str, args: argparse.Namespace
) -> dict[str, typing.Any]:
    """kill -9 of the node holding partitions → every one of them owned by another node → first completion."""
    from durio.ids import partition_key_of
    from durio.partitions import partition_of_key

    database = _database(postgres, "durio_takeover")
    run.progress("takeover: starting two nodes")
    nodes, not_ready = start_nodes(2, database.dsn, work, logs, backend, args, "takeover")
    result: dict[str, typing.Any] = {
        "lease_s": args.lease,
        "partitions": args.partitions,
        "second_node_ready_before_kill": not_ready is None,
        "second_node_note": not_ready,
    }
    try:
        victim, survivor = nodes
        # Some work first, so the partitions taken over have rows to load.
        keys = [f"k{i}" for i in range(200)]
        for key in keys:
            status, body = compare._http("POST", victim.ingress, f"/restate/call/Counter/{key}/add", b"1")
            if status != 200:
                raise ServerDied(f"{victim.name} answered {status} before the kill: {body[:200]!r}")
        held = {pid for pid, owner, _ in _owners(database) if owner and owner.startswith(f"{victim.name}@")}
        if not held - {-1}:
            return {**result, "available": False, "reason": f"{victim.name} holds no partition before the kill"}
        probe = next(key for key in keys if partition_of_key(partition_key_of(key), args.partitions) in held)
        run.progress(f"takeover: kill -9 of {victim.name} ({len(held)} partitions)")
        killed_at = time.monotonic()
        victim.process.process.send_signal(signal.SIGKILL)
        victim.process.process.wait()
        deadline = killed_at + args.lease + 30
        owned_at = completed_at = None
        new_owners: set[str] = set()
        while time.monotonic() < deadline and (owned_at is None or completed_at is None):
            if owned_at is None:
                rows = {pid: (owner, valid) for pid, owner, valid in _owners(database)}
                if all(rows[pid][1] and rows[pid][0] and not rows[pid][0].startswith(f"{victim.name}@") for pid in held):
                    owned_at = time.monotonic()
                    new_owners = {typing.cast(str, rows[pid][0]).split("@")[0] for pid in held}
            if completed_at is None:
                try:
                    status, _ = compare._http(
                        "POST", survivor.ingress, f"/restate/call/Counter/{probe}/add", b"1", timeout=args.lease + 30
                    )
                except OSError:
                    status = 0
                if status == 200:
                    completed_at = time.monotonic()
            survivor.process.check_alive()
            time.sleep(0.05)
        result["available"] = owned_at is not None and completed_at is not None
        if not result["available"]:
            result["reason"] = (
                f"no other node {'completed an invocation on' if owned_at else 'took over'} "
                f"{victim.name}'s partitions within the lease + 30 s"
            )
        result.update(
            {
                "killed_node": victim.name,
                "partitions_taken_over": len(held),
                "new_owners": sorted(new_owners),
                "kill_to_owned_s": None if owned_at is None else owned_at - killed_at,
                "kill_to_first_completion_s": None if completed_at is None else completed_at - killed_at,
                "survivor_log": [
                    line for line in survivor.process.log_tail(40).splitlines() if "local store" in line or "holds" in line
                ][-3:],
            }
        )
        return result
    finally:
        for node in nodes:
            node.process.stop()


# ------------------------------------------------------------------ the run


def _node_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(count < 1 or count > 8 for count in counts) or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"distinct node counts from 1 to 8, e.g. 1,2,3; not {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = run.build_parser()
    parser.description = "durio on PostgreSQL (--cluster) against durio on LMDB alone, same run, medians over rounds."
    parser.set_defaults(
        duration=3.0, concurrency=[1, 16], workloads=DEFAULT_WORKLOADS, skip_ceilings=True, backends=[run.BENCH_BACKEND]
    )
    parser.add_argument(
        "--nodes", type=_node_counts, default=[1], help="comma-separated cluster sizes to measure, e.g. 1,2,3 (default 1)"
    )
    parser.add_argument(
        "--takeover",
        action="store_true",
        help="also time a takeover: kill -9 of a node -> its partitions owned by another -> first completion",
    )
    parser.add_argument("--lease", type=float, default=10.0, help="--cluster-lease of every node, seconds (default 10)")
    parser.add_argument("--partitions", type=int, default=24, help="--partitions of every server (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="rows of each workload on each configuration (default 3)")
    for action in parser._actions:
        if action.dest == "duration":
            action.help = "measured seconds per row (default 3)"
        elif action.dest == "concurrency":
            action.help = "comma-separated (default 1,16)"
        elif action.dest == "workloads":
            action.help = f"comma-separated, from {','.join(WORKLOADS)} (default: {','.join(DEFAULT_WORKLOADS)})"
        elif action.dest == "backends":
            action.help = f"the one event loop every server runs on (default {run.BENCH_BACKEND})"
        elif action.dest == "durio_workers":
            action.help = argparse.SUPPRESS  # a cluster node runs one worker: every server here does
    return parser


def per_step(summary: dict[str, list[dict[str, typing.Any]]], rows: list[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
    """Per configuration and workload at 1 connection: what shipping adds to each group commit."""
    found = []
    for config, entries in summary.items():
        for entry in entries:
            if entry["concurrency"] != 1:
                continue
            pg, lmdb = entry[config], entry["lmdb"]
            commits = pg["commits_per_1k_invocations"]
            added_ms = None
            if pg["p50_ms"] is not None and lmdb["p50_ms"] is not None and commits:
                added_ms = (pg["p50_ms"] - lmdb["p50_ms"]) / (commits / 1000)
            mine = [
                row
                for row in rows
                if row.get("config") == config and row["workload"] == entry["workload"] and row["concurrency"] == 1
            ]
            postgres_cpu = [
                row["components"]["postgresql"]["cpu_s_per_1k"]
                for row in mine
                if row["components"].get("postgresql", {}).get("cpu_s_per_1k") is not None
            ]
            found.append(
                {
                    "config": config,
                    "workload": entry["workload"],
                    "p50_ms_pg": pg["p50_ms"],
                    "p50_ms_lmdb": lmdb["p50_ms"],
                    "commits_per_invocation": commits / 1000 if commits else None,
                    "added_ms_per_commit": added_ms,
                    "postgresql_cpu_s_per_1k": statistics.median(postgres_cpu) if postgres_cpu else None,
                }
            )
    return found


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.backends) != 1:
        raise SystemExit("cluster.py: --backends takes one event loop here")
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("cluster.py: PostgreSQL is not installed (`make bench-cluster` installs Debian's postgresql)")
    started = datetime.datetime.now(datetime.timezone.utc)
    backend = args.backends[0]
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-cluster-", dir=run._data_parent()))
    logs = work / "logs"
    logs.mkdir()
    # Its own temp dir, handed to the postgres user when running as root (tests/postgres.py), on the same disk.
    postgres = Postgres(pathlib.Path(tempfile.mkdtemp(prefix="durio-bench-postgres-", dir=run._data_parent())), bin_dir)
    document: dict[str, typing.Any] = {
        "kind": "bench-cluster",
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "nodes": args.nodes,
            "concurrency": args.concurrency,
            "workloads": args.workloads,
            "timeout_s": args.timeout,
            "backend": backend,
            "lease_s": args.lease,
            "partitions": args.partitions,
            "takeover": args.takeover,
            "data_filesystem": filesystem_type(work),
            "durio_workers": 1,
            "postgresql": f"{bin_dir} (tests/postgres.py settings: fsync on, shared_buffers 32MB, max_connections 40), "
            "on the same disk and cores",
            "cpu": "utime+stime over the window of every process of the configuration: its nodes, and for pg-N "
            "PostgreSQL's postmaster and backends",
        },
        "workloads": {name: WORKLOADS[name].description for name in args.workloads},
    }
    failure = None
    servers: dict[str, compare.System] = {}
    try:
        run.progress(f"starting PostgreSQL in {postgres.root}")
        postgres.init()
        postgres.start()
        document["postgresql_version"] = postgres.sql("SHOW server_version")[0][0]
        run.progress("measuring PostgreSQL's round trips (SELECT 1, one fenced batch)")
        document["round_trips"] = measure_round_trips(postgres, args.partitions)
        run.progress("starting lmdb: durio without --cluster")
        servers["lmdb"], document["lmdb"] = compare.start_durio(work / "lmdb", logs, backend, "1", name="lmdb")
        admin_ports: dict[str, int | list[int]] = {"lmdb": document["lmdb"]["admin_port"]}
        document["clusters"] = {}
        for count in args.nodes:
            system, info = start_cluster(count, postgres, work, logs, backend, args)
            document["clusters"][f"pg-{count}"] = info
            if system is not None:
                servers[system.name] = system
                admin_ports[system.name] = info["admin_ports"]
        document["machine_before_rows"] = machine_state(work)
        if len(servers) > 1:
            run.progress("measuring, the configurations taking turns")
            workers.run_rounds(servers, admin_ports, args, document.setdefault("rows", []), label="config")
            document["summary"] = {
                config: workers.summarize(document["rows"], [config, "lmdb"], label="config")
                for config in servers
                if config != "lmdb"
            }
            document["per_step"] = per_step(document["summary"], document["rows"])
        document["machine_after_rows"] = machine_state(work)
        for system in reversed(list(servers.values())):
            system.stop()
        servers.clear()
        if args.takeover:
            document["takeover"] = measure_takeover(postgres, work, logs, backend, args)
    except (ServerDied, run.LoadgenFailed, ProcessGone, RuntimeError) as exc:
        failure = exc
        document["failure"] = str(exc)
    except KeyboardInterrupt:
        run.progress("interrupted: servers stopped, nothing written")
        return 130
    finally:
        for system in reversed(list(servers.values())):
            system.stop()
        if postgres.running():
            try:
                postgres.stop("fast")
            except RuntimeError:
                pass
        shutil.rmtree(postgres.root, ignore_errors=True)
        if not args.keep_data and failure is None:
            shutil.rmtree(work, ignore_errors=True)
    return finish(document, started, "cluster-", lambda: _print_report(document, args), failure, logs)


def _print_report(document: dict[str, typing.Any], args: argparse.Namespace) -> None:
    print(f"\n{machine_line(document['machine'])}")
    for when in ("before", "after"):
        if document.get(f"machine_{when}_rows"):
            print(f"{when} the rows: {state_line(document[f'machine_{when}_rows'])}")
    settings = document["settings"]
    print(
        f"PostgreSQL {document.get('postgresql_version', '?')} on loopback, same machine; every server --workers 1 "
        f"on {settings['backend']}, fsync on; {args.duration:g} s per row after {args.warmup:g} s warm-up, "
        f"{args.rounds} rounds, the order reversing every round; lease {args.lease:g} s, {args.partitions} partitions\n"
    )
    trips = document.get("round_trips")
    if trips:
        print(f"PostgreSQL's own round trip, before the servers start (median / p99 ms over {trips['select_1']['samples']}):")
        body = [["SELECT 1", _number(trips["select_1"]["median_ms"], 2), _number(trips["select_1"]["p99_ms"], 2)]]
        for steps in (1, 64):
            figure = trips[f"fenced_batch_{steps}_steps"]
            body.append(
                [
                    f"fenced batch, {steps} step(s) ({figure['rows']} rows)",
                    _number(figure["median_ms"], 2),
                    _number(figure["p99_ms"], 2),
                ]
            )
        print(_format(body, ["what", "median ms", "p99 ms"], left_columns=1))
    for config, info in document.get("clusters", {}).items():
        if not info["available"]:
            print(f"\n{config}: not available: {info['reason']}")
    if document.get("summary"):
        header = [
            "config",
            "workload",
            "conc",
            "req/s PG",
            "req/s LMDB",
            "PG/LMDB",
            "each round",
            "p50 ms PG / LMDB",
            "p99 ms PG / LMDB",
            "CPU s/1k PG (nodes+postgres) / LMDB",
            "commits/1k inv PG / LMDB",
            "errors",
        ]
        body = []
        for config, entries in document["summary"].items():
            for entry in entries:
                pg, lmdb = entry[config], entry["lmdb"]
                body.append(
                    [
                        config,
                        entry["workload"],
                        str(entry["concurrency"]),
                        _number(pg["requests_per_s"], 0),
                        _number(lmdb["requests_per_s"], 0),
                        "-" if entry["ratio"] is None else f"{entry['ratio']:.2f}",
                        " ".join(f"{ratio:.2f}" for ratio in entry["round_ratios"]),
                        f"{_number(pg['p50_ms'], 2)} / {_number(lmdb['p50_ms'], 2)}",
                        f"{_number(pg['p99_ms'], 1)} / {_number(lmdb['p99_ms'], 1)}",
                        f"{_number(pg['server_cpu_s_per_1k'], 2)} / {_number(lmdb['server_cpu_s_per_1k'], 2)}",
                        f"{_number(pg['commits_per_1k_invocations'], 0)} / {_number(lmdb['commits_per_1k_invocations'], 0)}",
                        f"{pg['errors']}/{lmdb['errors']}",
                    ]
                )
        print("\nMedians over the rounds:")
        print(_format(body, header, left_columns=2))
    if document.get("per_step"):
        print(
            "\nPer group commit at 1 connection (every commit one invocation's step): what PostgreSQL adds "
            "(with several nodes, forwarding between them too)"
        )
        body = [
            [
                entry["config"],
                entry["workload"],
                _number(entry["p50_ms_pg"], 2),
                _number(entry["p50_ms_lmdb"], 2),
                _number(entry["commits_per_invocation"], 2),
                _number(entry["added_ms_per_commit"], 2),
                _number(entry["postgresql_cpu_s_per_1k"], 2),
            ]
            for entry in document["per_step"]
        ]
        print(
            _format(
                body,
                ["config", "workload", "p50 ms PG", "p50 ms LMDB", "commits/inv", "added ms/commit", "PostgreSQL CPU s/1k"],
                left_columns=2,
            )
        )
    takeover = document.get("takeover")
    if takeover:
        if takeover.get("available"):
            print(
                f"\nTakeover (lease {takeover['lease_s']:g} s): kill -9 of {takeover['killed_node']} -> its "
                f"{takeover['partitions_taken_over']} partitions owned by {', '.join(takeover['new_owners'])} in "
                f"{takeover['kill_to_owned_s']:.1f} s -> first invocation on one of them completed in "
                f"{takeover['kill_to_first_completion_s']:.1f} s"
            )
        else:
            print(f"\nTakeover: not available: {takeover.get('reason')}")
        if takeover.get("second_node_note"):
            print(f"  (before the kill: {takeover['second_node_note']})")
    notes = error_notes(document.get("rows", []))
    if notes:
        print("\nErrors:\n" + notes)


if __name__ == "__main__":
    sys.exit(main())
