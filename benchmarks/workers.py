"""`make bench-workers`: durio with several worker processes against durio with one, in one run.

    .venv/bin/python benchmarks/workers.py [--workers 2,1] [--rounds 5] [--duration 3] [--warmup 1]
                                           [--concurrency 64] [--workloads noop,steps,counter_spread,counter_hot]

1. Two servers start and stay up for the whole run, each `python -m durio.cli serve
   benchmarks/durio_app.py --workers N` as `make bench` starts durio (fsync on, a fresh
   data directory each, one backend: run.BENCH_BACKEND unless --backends names one).
   Each is up once GET /cluster shows all its workers.
2. Rounds: in each, every workload runs on both servers, one row each (a warm-up, then a
   measured window of the same load generator, compare.measure_system). The order of the
   two alternates from round to round (A B, then B A, ...), so that neither always runs
   first, on a warmer or a cooler machine.
3. Per row: req/s, p50, p99 from the client; CPU seconds of the server's whole process tree
   (the supervising parent and each worker, each also on its own) and of the load generator
   over exactly the window; the machine's busy CPU over the window, so the other work on a
   shared machine shows.
4. A table per round, a summary of medians over the rounds (req/s, p99, CPU per 1,000
   requests, cores used by each worker) with the ratio of the two servers' medians, and
   benchmarks/results/workers-<UTC timestamp>.json with every row, and the machine's state (load
   average, the data disk's fdatasync time) before and after the rows.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import statistics
import sys
import tempfile
import typing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402  (starting durio, measuring one row with the CPU of every process)
import run  # noqa: E402  (the parser's shared flags, the data directory's place)
from machine import filesystem_type, machine_info, machine_state, state_line  # noqa: E402
from processes import ServerDied  # noqa: E402
from procstats import ProcessGone  # noqa: E402
from report import _format, _number, error_notes, finish, machine_line  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

# The targets for the first of the two configurations over the second (2 workers against 1).
TARGET_RATIO = 1.6
TARGET_WORKLOADS = ("noop", "steps", "counter_spread")
DEFAULT_WORKLOADS = ["noop", "steps", "counter_spread", "counter_hot"]


def _configs(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if (
        len(names) != 2
        or len(set(names)) != 2
        or not all(name == "auto" or (name.isdigit() and int(name) >= 1) for name in names)
    ):
        raise argparse.ArgumentTypeError(f"two different worker counts (a number or auto), e.g. 2,1; not {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = run.build_parser()
    parser.description = "durio with one number of worker processes against another, alternating, medians over rounds."
    parser.set_defaults(duration=3.0, concurrency=[64], workloads=DEFAULT_WORKLOADS, skip_ceilings=True)
    parser.add_argument(
        "--workers",
        type=_configs,
        default=["2", "1"],
        help="the two `durio serve --workers` values to compare, the first over the second (default 2,1)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rows of each workload on each server (default 5)")
    for action in parser._actions:
        if action.dest == "duration":
            action.help = "measured seconds per row (default 3)"
        elif action.dest == "concurrency":
            action.help = "comma-separated (default 64)"
        elif action.dest == "workloads":
            action.help = f"comma-separated, from {','.join(WORKLOADS)} (default: {','.join(DEFAULT_WORKLOADS)})"
    return parser


def _worker_cores(row: dict[str, typing.Any]) -> list[float]:
    """Cores each process of the server used over the window, busiest first (the idle supervising parent left out);
    a system of several components (a cluster's nodes and its PostgreSQL) counts the processes of each."""
    by_pid = {pid: cpu for part in row["components"].values() for pid, cpu in part.get("cpu_s_by_pid", {}).items()}
    cores = sorted((cpu / row["duration_s"] for cpu in by_pid.values()), reverse=True)
    return [core for core in cores if core >= 0.005] or cores[:1]


def writer_counters(admin_port: int | list[int]) -> dict[str, float]:
    """The server's group commits, the writes in them, and the invocations completed so far (GET /metrics, summed
    over the workers, and over the servers when given several admin ports: a cluster's nodes)."""
    wanted = {
        "durio_writer_batches_total": "commits",
        "durio_writer_ops_total": "writes",
        "durio_invocations_completed_total": "completed",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    for port in [admin_port] if isinstance(admin_port, int) else admin_port:
        status, body = compare._http("GET", port, "/metrics")
        if status != 200:
            raise ServerDied(f"GET /metrics answered {status}")
        for line in body.decode().splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in wanted:
                found[wanted[name]] += float(line.rsplit(" ", 1)[1])
    return found


def run_rounds(
    servers: dict[str, compare.System],
    admin_ports: dict[str, int | list[int]],
    args: argparse.Namespace,
    rows: list[dict[str, typing.Any]],
    label: str = "workers",
) -> None:
    """Each round, every workload on every server, the servers' order reversed every other round; each row
    is filed under `label` (the field that names its server's configuration)."""
    order = list(servers)
    for round_index in range(args.rounds):
        turn = order if round_index % 2 == 0 else order[::-1]
        for name in args.workloads:
            for concurrency in args.concurrency:
                for config in turn:
                    other = next(servers[c] for c in servers if c != config)
                    run.progress(
                        f"  round {round_index + 1}/{args.rounds}: {name}, {concurrency} connections, "
                        f"{'--workers ' if label == 'workers' else ''}{config} ..."
                    )
                    before = writer_counters(admin_ports[config])
                    row = compare.measure_system(
                        servers[config], other, WORKLOADS[name].scenario, concurrency, args, args.duration, args.warmup
                    )
                    after = writer_counters(admin_ports[config])
                    # Over the whole row (warm-up, window and drain): how many group commits (each one LMDB write
                    # transaction and one fsync, taking turns on the environment's one write lock) per invocation.
                    delta = {key: after[key] - before[key] for key in after}
                    row["writer"] = {
                        **delta,
                        "commits_per_1k_invocations": delta["commits"] / delta["completed"] * 1000
                        if delta["completed"]
                        else None,
                        "writes_per_commit": delta["writes"] / delta["commits"] if delta["commits"] else None,
                    }
                    rows.append({"round": round_index + 1, "workload": name, label: config, **row})


def _median(rows: list[dict[str, typing.Any]], field: str) -> float | None:
    values = [row[field] for row in rows if row.get(field) is not None]
    return statistics.median(values) if values else None


def summarize(rows: list[dict[str, typing.Any]], configs: list[str], label: str = "workers") -> list[dict[str, typing.Any]]:
    """Medians over the rounds per (workload, concurrency, configuration: the rows' `label` field), and the first
    configuration's over the second's."""
    summary = []
    keys = list(dict.fromkeys((row["workload"], row["concurrency"]) for row in rows))
    for workload, concurrency in keys:
        entry: dict[str, typing.Any] = {"workload": workload, "concurrency": concurrency}
        for config in configs:
            mine = [
                row for row in rows if (row["workload"], row["concurrency"], row.get(label)) == (workload, concurrency, config)
            ]
            per_worker = [_worker_cores(row) for row in mine]
            entry[config] = {
                "rounds": len(mine),
                "requests_per_s": _median(mine, "requests_per_s"),
                "requests_per_s_each_round": [row["requests_per_s"] for row in mine],
                "p50_ms": _median(mine, "p50_ms"),
                "p99_ms": _median(mine, "p99_ms"),
                "server_cpu_s_per_1k": _median(mine, "server_cpu_s_per_1k"),
                "client_cpu_s_per_1k": _median(mine, "client_cpu_s_per_1k"),
                "server_cores": statistics.median(
                    row["server_cpu_s"] / row["duration_s"] for row in mine if row.get("server_cpu_s") is not None
                )
                if mine
                else None,
                "worker_cores": [
                    statistics.median(cores[i] for cores in per_worker if len(cores) > i)
                    for i in range(max((len(cores) for cores in per_worker), default=0))
                ],
                "other_work_cores": _median(mine, "other_work_cores"),
                "run_queue_wait_threads": _median(mine, "run_queue_wait_threads"),
                "commits_per_1k_invocations": _median([row["writer"] for row in mine], "commits_per_1k_invocations"),
                "errors": sum(row["errors"] for row in mine),
            }
        first, second = entry[configs[0]], entry[configs[1]]
        entry["ratio"] = (
            first["requests_per_s"] / second["requests_per_s"] if first["requests_per_s"] and second["requests_per_s"] else None
        )
        entry["round_ratios"] = [
            a / b for a, b in zip(first["requests_per_s_each_round"], second["requests_per_s_each_round"]) if b
        ]
        summary.append(entry)
    return summary


def _cores(values: list[float]) -> str:
    return "+".join(f"{value:.2f}" for value in values) if values else "-"


def round_table(rows: list[dict[str, typing.Any]], label: str = "workers") -> str:
    header = [
        "round",
        "workload",
        "conc",
        label,
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU s/1k",
        "cores per process",
        "commits/1k inv",
        "loadgen CPU s/1k",
        "other work cores",
        "waiting for a CPU",
        "errors",
    ]
    body = [
        [
            str(row["round"]),
            row["workload"],
            str(row["concurrency"]),
            row[label],
            _number(row["requests_per_s"], 0),
            _number(row["p50_ms"], 1),
            _number(row["p99_ms"], 1),
            _number(row.get("server_cpu_s_per_1k"), 2),
            _cores(_worker_cores(row)),
            _number(row.get("writer", {}).get("commits_per_1k_invocations"), 0),
            _number(row.get("client_cpu_s_per_1k"), 2),
            _number(row.get("other_work_cores"), 2),
            _number(row.get("run_queue_wait_threads"), 2),
            str(row["errors"]),
        ]
        for row in rows
    ]
    return _format(body, header, left_columns=4)


def summary_table(summary: list[dict[str, typing.Any]], configs: list[str]) -> str:
    a, b = configs
    header = [
        "workload",
        "conc",
        f"req/s w{a}",
        f"req/s w{b}",
        f"w{a}/w{b}",
        "each round",
        "target",
        f"p99 ms w{a} / w{b}",
        f"CPU s/1k w{a} / w{b}",
        f"cores per worker w{a}",
        f"cores w{b}",
        f"commits/1k inv w{a} / w{b}",
        "loadgen CPU s/1k",
        "other work cores",
        "waiting for a CPU",
        "errors",
    ]
    body = []
    for entry in summary:
        first, second = entry[a], entry[b]
        target = f">= {TARGET_RATIO}" if entry["workload"] in TARGET_WORKLOADS else "(one key: one worker)"
        if entry["workload"] in TARGET_WORKLOADS and entry["ratio"] is not None:
            target += " met" if entry["ratio"] >= TARGET_RATIO else " NOT met"
        body.append(
            [
                entry["workload"],
                str(entry["concurrency"]),
                _number(first["requests_per_s"], 0),
                _number(second["requests_per_s"], 0),
                "-" if entry["ratio"] is None else f"{entry['ratio']:.2f}",
                " ".join(f"{ratio:.2f}" for ratio in entry["round_ratios"]),
                target,
                f"{_number(first['p99_ms'], 1)} / {_number(second['p99_ms'], 1)}",
                f"{_number(first['server_cpu_s_per_1k'], 2)} / {_number(second['server_cpu_s_per_1k'], 2)}",
                _cores(first["worker_cores"]),
                _cores(second["worker_cores"]),
                f"{_number(first['commits_per_1k_invocations'], 0)} / {_number(second['commits_per_1k_invocations'], 0)}",
                f"{_number(first['client_cpu_s_per_1k'], 2)} / {_number(second['client_cpu_s_per_1k'], 2)}",
                f"{_number(first['other_work_cores'], 2)} / {_number(second['other_work_cores'], 2)}",
                f"{_number(first['run_queue_wait_threads'], 2)} / {_number(second['run_queue_wait_threads'], 2)}",
                f"{first['errors']}/{second['errors']}",
            ]
        )
    return _format(body, header, left_columns=1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-workers-", dir=run._data_parent()))
    logs = work / "logs"
    logs.mkdir()
    backend = args.backends[0] if len(args.backends) == 1 else run.BENCH_BACKEND
    document: dict[str, typing.Any] = {
        "kind": "bench-workers",
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "workloads": args.workloads,
            "timeout_s": args.timeout,
            "backend": backend,
            "data_filesystem": filesystem_type(work),
            "order": "per round and workload, one row on each server; the order of the two flips every round",
            "cpu": "utime+stime of the server's process tree (parent and workers, each also on its own) and of the "
            "load generator, over exactly the measured window; the machine's busy CPU over the window",
        },
        "workloads": {name: WORKLOADS[name].description for name in args.workloads},
    }
    failure = None
    servers: dict[str, compare.System] = {}
    try:
        for config in args.workers:
            name = f"durio-workers-{config}"
            run.progress(f"starting durio --workers {config} (data in {work / name})")
            servers[config], document[name] = compare.start_durio(work / name, logs, backend, config, name=name)
        document["machine_before_rows"] = machine_state(work)
        run.progress("measuring, alternating the two servers")
        admin_ports = {config: document[f"durio-workers-{config}"]["admin_port"] for config in servers}
        run_rounds(servers, admin_ports, args, document.setdefault("rows", []))
        document["machine_after_rows"] = machine_state(work)
        document["summary"] = summarize(document["rows"], args.workers)
    except (ServerDied, run.LoadgenFailed, ProcessGone) as exc:
        failure = exc
        document["failure"] = str(exc)
    except KeyboardInterrupt:
        run.progress("interrupted: servers stopped, nothing written")
        return 130
    finally:
        for system in reversed(list(servers.values())):
            system.stop()
        if not args.keep_data and failure is None:
            shutil.rmtree(work, ignore_errors=True)
    return finish(document, started, "workers-", lambda: _print_report(document, args), failure, logs)


def _print_report(document: dict[str, typing.Any], args: argparse.Namespace) -> None:
    print(f"\n{machine_line(document['machine'])}")
    for when in ("before", "after"):
        if document.get(f"machine_{when}_rows"):
            print(f"{when} the rows: {state_line(document[f'machine_{when}_rows'])}")
    print(
        f"durio --workers {' against --workers '.join(args.workers)} on {document['settings']['backend']}; "
        f"{args.duration:g} s per row after {args.warmup:g} s warm-up; {args.rounds} rounds, the order of the two "
        f"flipping every round; closed loop, one request in flight per connection; fsync on\n"
    )
    rows = document.get("rows", [])
    if rows:
        print(round_table(rows))
    if document.get("summary"):
        print("\nMedians over the rounds:")
        print(summary_table(document["summary"], args.workers))
        print(
            "(cores per worker: CPU seconds of each process over the window / window, busiest first, the idle "
            "supervising parent left out; CPU s/1k: the whole process tree; commits/1k inv: group commits (one LMDB "
            "write transaction and one fsync each) per 1,000 invocations completed, over the whole row, from /metrics; "
            "other work cores: the machine's busy CPU that was neither durio's nor the load generator's, i.e. other "
            "programs on this shared machine; waiting for a CPU: durio's threads that were runnable but not running, "
            "on average over the window, from /proc/<tid>/schedstat)"
        )
    notes = error_notes(rows)
    if notes:
        print("\nErrors:\n" + notes)


if __name__ == "__main__":
    sys.exit(main())
