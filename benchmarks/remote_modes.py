"""`make bench-remote`: a remote deployment over bidirectional streaming against request/response, same run.

    .venv/bin/python benchmarks/remote_modes.py [--duration 5] [--warmup 1] [--concurrency 1,16]
                                                [--workloads steps,sleeper] [--rounds 3]

1. The deployment: bench_services.py as `durio.app(services)` on hypercorn's Trio
   worker (remote_deployment.py), one process for the whole run, behind a wrapper
   that counts requests and request/response body bytes per path and HTTP version.
2. Phases alternate per workload: bidi, rr, bidi, rr, ... (`--rounds` of each). Every
   phase starts a fresh `durio server` (fsync on, its default; a fresh data directory,
   placed as run.py places it) and registers the deployment on it:
   - bidi: `POST /deployments {"uri": ...}`: durio discovers over HTTP/2, the manifest
     says BIDI_STREAM, and each attempt is one bidirectional stream;
   - rr: the same with `"use_http_11": true`: HTTP/1.1, REQUEST_RESPONSE, a request per
     suspension, each resending the whole journal.
   The deployment record must show the mode (protocol_type, http_version), or the run stops.
   (Registering the same URI again with use_http_11 changed does update the deployment in
   place; a fresh server per phase is chosen so that both modes start on an empty database.)
3. Per phase and concurrency, loadgen.py drives the workload at durio's ingress (as run.py
   does: a warm-up, a measured window, a drain). Around the whole loadgen run, the
   deployment's counters, durio's completed-invocation count (/metrics) and both processes'
   CPU time are read, so per invocation: requests at the deployment, bytes durio sent
   (request bodies), bytes the deployment answered (response bodies), CPU ms of each side.
   req/s, p50 and p99 are the client's, over the window only.
4. One table per row, one summary per workload and concurrency (means over the rounds),
   and everything in benchmarks/results/remote-modes-<UTC timestamp>.json.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import sys
import tempfile
import typing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402  (measure(), the parser's list types, the data directory's place: shared with `make bench`)
from compare import _http  # noqa: E402
from machine import filesystem_type, machine_info  # noqa: E402
from processes import ServerDied, ServerProcess, free_ports  # noqa: E402
from procstats import ProcessGone, tree_cpu_seconds  # noqa: E402
from report import _format, _number, error_notes, finish, machine_line  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PYTHON = sys.executable

# mode -> (what the registration asks, what the deployment record must then show)
MODES: dict[str, tuple[dict[str, typing.Any], tuple[str, str]]] = {
    "bidi": ({}, ("BidiStream", "HTTP/2.0")),
    "rr": ({"use_http_11": True}, ("RequestResponse", "HTTP/1.1")),
}
_COMPLETED = re.compile(r'^durio_invocations_completed_total\{outcome="(success|failure)"\} (\d+)$', re.MULTILINE)
_ATTEMPT_FAILURES = re.compile(r"^durio_attempt_failures_total (\d+)$", re.MULTILINE)


class Deployment:
    """remote_deployment.py in its own process, and its counters."""

    def __init__(self, logs: pathlib.Path) -> None:
        (self.port,) = free_ports(1)
        self.uri = f"http://127.0.0.1:{self.port}"
        self.server = ServerProcess(
            "deployment (durio.app on hypercorn)",
            [PYTHON, str(HERE / "remote_deployment.py"), f"127.0.0.1:{self.port}"],
            logs / "deployment.log",
            {"PYTHONUNBUFFERED": "1"},
        )
        self.server.wait_until_answering(self.port, "/bench/counters")

    def counters(self) -> dict[str, dict[str, int]]:
        status, body = _http("GET", self.port, "/bench/counters")
        if status != 200:
            raise ServerDied(f"the deployment's counters answered HTTP {status}")
        return json.loads(body)


class DurioServer:
    """A `durio server` (no services of its own) with a fresh data directory, the deployment registered."""

    def __init__(self, data_dir: pathlib.Path, log: pathlib.Path) -> None:
        self.ingress, self.admin = free_ports(2)
        self.argv = [
            PYTHON,
            "-m",
            "durio.cli",
            "server",
            "--data-dir",
            str(data_dir),
            "--ingress",
            f"127.0.0.1:{self.ingress}",
            "--admin",
            f"127.0.0.1:{self.admin}",
        ]
        self.server = ServerProcess("durio server", self.argv, log)
        try:
            self.server.wait_until_answering(self.ingress, "/restate/health")
        except BaseException:
            self.server.stop()
            raise

    def register(self, uri: str, mode: str) -> dict[str, typing.Any]:
        """Register the deployment in `mode`; the record as the admin API shows it (checked to be that mode)."""
        asked, expected = MODES[mode]
        status, body = _http("POST", self.admin, "/deployments", json.dumps({"uri": uri, **asked}).encode(), 60)
        if status not in (200, 201):
            raise ServerDied(f"registering {uri} ({mode}): HTTP {status} {body[:500]!r}")
        status, body = _http("GET", self.admin, f"/deployments/{json.loads(body)['id']}")
        record = json.loads(body)
        shown = (record.get("protocol_type"), record.get("http_version"))
        if status != 200 or shown != expected:
            raise ServerDied(f"the deployment registered for {mode} shows {shown} (HTTP {status}), not {expected}")
        return {key: record.get(key) for key in ("id", "uri", "protocol_type", "http_version", "sdk_version")}

    def invocation_counts(self) -> dict[str, int]:
        status, body = _http("GET", self.admin, "/metrics")
        if status != 200:
            raise ServerDied(f"durio's /metrics answered HTTP {status}")
        text = body.decode()
        counts = {f"completed_{outcome}": int(value) for outcome, value in _COMPLETED.findall(text)}
        failures = _ATTEMPT_FAILURES.search(text)
        counts["attempt_failures"] = int(failures.group(1)) if failures else -1
        return counts


def _snapshot(deployment: Deployment, durio: DurioServer) -> dict[str, typing.Any]:
    return {
        "deployment": deployment.counters(),
        "durio": durio.invocation_counts(),
        "deployment_cpu_s": tree_cpu_seconds(deployment.server.pid)[0],
        "durio_cpu_s": tree_cpu_seconds(durio.server.pid)[0],  # `durio server` forks workers (--workers auto)
    }


def _invoke_totals(counters: dict[str, dict[str, int]]) -> dict[str, int]:
    """Requests and body bytes of every /invoke/... path (what discovery costs is not per invocation)."""
    totals = {"requests": 0, "request_bytes": 0, "response_bytes": 0}
    for path, tally in counters.items():
        if path.startswith("/invoke/"):
            for name in totals:
                totals[name] += tally[name]
    return totals


def _per_invocation(before: dict[str, typing.Any], after: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """What the deployment and durio counted over one loadgen run (warm-up, window and drain), per invocation."""
    start, end = _invoke_totals(before["deployment"]), _invoke_totals(after["deployment"])
    invocations = after["durio"]["completed_success"] - before["durio"]["completed_success"]
    figures: dict[str, typing.Any] = {
        "invocations_completed": invocations,
        "invocations_failed": after["durio"]["completed_failure"] - before["durio"]["completed_failure"],
        "attempt_failures": after["durio"]["attempt_failures"] - before["durio"]["attempt_failures"],
        "deployment_requests": end["requests"] - start["requests"],
        "request_bytes": end["request_bytes"] - start["request_bytes"],
        "response_bytes": end["response_bytes"] - start["response_bytes"],
        "deployment_cpu_s": after["deployment_cpu_s"] - before["deployment_cpu_s"],
        "durio_cpu_s": after["durio_cpu_s"] - before["durio_cpu_s"],
    }
    paths = {
        path: {name: tally[name] - before["deployment"].get(path, {}).get(name, 0) for name in tally}
        for path, tally in after["deployment"].items()
        if path.startswith("/invoke/")
    }
    figures["deployment_paths"] = {path: tally for path, tally in paths.items() if tally["requests"]}
    per = max(invocations, 1)
    figures.update(
        {
            "requests_per_invocation": figures["deployment_requests"] / per,
            "request_bytes_per_invocation": figures["request_bytes"] / per,
            "response_bytes_per_invocation": figures["response_bytes"] / per,
            "deployment_cpu_ms_per_invocation": figures["deployment_cpu_s"] * 1000 / per,
            "durio_cpu_ms_per_invocation": figures["durio_cpu_s"] * 1000 / per,
        }
    )
    return figures


def run_phase(
    args: argparse.Namespace,
    workload: str,
    mode: str,
    round_number: int,
    deployment: Deployment,
    work: pathlib.Path,
    logs: pathlib.Path,
    rows: list[dict[str, typing.Any]],
) -> dict[str, typing.Any]:
    """One fresh durio server, the deployment registered in `mode`, `workload` at every concurrency."""
    name = f"{workload}-{mode}-{round_number}"
    durio = DurioServer(work / f"data-{name}", logs / f"durio-{name}.log")
    try:
        record = durio.register(deployment.uri, mode)
        for concurrency in args.concurrency:
            run.progress(f"  {workload}, {mode}, round {round_number}, {concurrency} connections ...")
            before = _snapshot(deployment, durio)
            row = run.measure(
                f"http://127.0.0.1:{durio.ingress}", WORKLOADS[workload].scenario, concurrency, args, durio.server, args.duration
            )
            after = _snapshot(deployment, durio)
            deployment.server.check_alive()
            rows.append({"workload": workload, "mode": mode, "round": round_number, **row, **_per_invocation(before, after)})
        return record
    finally:
        durio.server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="A remote durio.app deployment: bidi streaming against request/response.")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per row (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each row (default 1)")
    parser.add_argument("--concurrency", type=run._int_list, default=[1, 16], help="comma-separated (default 1,16)")
    parser.add_argument(
        "--workloads",
        type=run._workload_list,
        default=["steps", "sleeper"],
        help=f"comma-separated, from {','.join(WORKLOADS)} (default steps,sleeper)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="phases of each mode per workload, alternating (default 3)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    parser.add_argument("--keep-data", action="store_true", help="keep the data directories and the server logs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-bench-remote-", dir=run._data_parent()))
    logs = work / "logs"
    logs.mkdir()
    document: dict[str, typing.Any] = {
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "workloads": args.workloads,
            "rounds": args.rounds,
            "timeout_s": args.timeout,
            "durio_data_filesystem": filesystem_type(work),
            "fsync": "durio default (on)",
            "deployment": "benchmarks/remote_deployment.py: durio.app(bench_services) on hypercorn.trio.serve, "
            "one process, SDK-docs production settings; body bytes counted by an ASGI wrapper",
            "modes": {mode: {"registration": asked, "expected": list(expected)} for mode, (asked, expected) in MODES.items()},
            "client": "benchmarks/loadgen.py, one thread per keep-alive connection, closed loop",
            "per_invocation_figures": "over the whole loadgen run (warm-up, window, drain) / invocations durio completed",
        },
        "workloads": {name: WORKLOADS[name].description for name in args.workloads},
        "registrations": [],
    }
    rows: list[dict[str, typing.Any]] = document.setdefault("rows", [])
    failure = None
    deployment = None
    try:
        run.progress(f"starting the deployment (durio data in {work})")
        deployment = Deployment(logs)
        for workload in args.workloads:
            for round_number in range(1, args.rounds + 1):
                for mode in MODES:
                    record = run_phase(args, workload, mode, round_number, deployment, work, logs, rows)
                    document["registrations"].append({"workload": workload, "mode": mode, "round": round_number, **record})
    except (ServerDied, run.LoadgenFailed, ProcessGone) as exc:
        failure = exc
        document["failure"] = str(exc)
    except KeyboardInterrupt:
        run.progress("interrupted: servers stopped, nothing written")
        return 130
    finally:
        if deployment is not None:
            deployment.server.stop()
        if not args.keep_data and failure is None:
            shutil.rmtree(work, ignore_errors=True)
    document["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return finish(document, started, "remote-modes-", lambda: _print_report(document, args), failure, logs)


def rows_table(rows: list[dict[str, typing.Any]]) -> str:
    header = [
        "workload",
        "mode",
        "round",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "dep. req/inv",
        "sent B/inv",
        "answered B/inv",
        "durio CPU ms/inv",
        "dep. CPU ms/inv",
        "errors",
    ]
    body = [
        [
            row["workload"],
            row["mode"],
            str(row["round"]),
            str(row["concurrency"]),
            _number(row["requests_per_s"], 0),
            _number(row["p50_ms"], 2),
            _number(row["p99_ms"], 2),
            _number(row["requests_per_invocation"], 2),
            _number(row["request_bytes_per_invocation"], 0),
            _number(row["response_bytes_per_invocation"], 0),
            _number(row["durio_cpu_ms_per_invocation"], 2),
            _number(row["deployment_cpu_ms_per_invocation"], 2),
            str(row["errors"] + row["invocations_failed"]),
        ]
        for row in rows
    ]
    return _format(body, header, left_columns=2)


def summary_table(rows: list[dict[str, typing.Any]]) -> str:
    """Per workload and concurrency: each mode's mean over its rounds, and bidi / rr."""
    groups: dict[tuple[str, int], dict[str, list[dict[str, typing.Any]]]] = {}
    for row in rows:
        groups.setdefault((row["workload"], row["concurrency"]), {}).setdefault(row["mode"], []).append(row)

    def mean(mode_rows: list[dict[str, typing.Any]], field: str) -> float:
        return statistics.fmean(row[field] for row in mode_rows)

    header = [
        "workload",
        "conc",
        "bidi req/s",
        "rr req/s",
        "bidi/rr",
        "bidi p50/p99 ms",
        "rr p50/p99 ms",
        "req/inv bidi/rr",
        "sent B/inv bidi/rr",
        "answered B/inv bidi/rr",
        "durio CPU ms/inv bidi/rr",
        "dep. CPU ms/inv bidi/rr",
    ]
    body = []
    for (workload, concurrency), modes in groups.items():
        bidi, rr = modes.get("bidi"), modes.get("rr")
        if not bidi or not rr:
            continue

        def pair(field: str, digits: int, bidi: list[dict[str, typing.Any]] = bidi, rr: list[dict[str, typing.Any]] = rr) -> str:
            return f"{_number(mean(bidi, field), digits)} / {_number(mean(rr, field), digits)}"

        body.append(
            [
                workload,
                str(concurrency),
                _number(mean(bidi, "requests_per_s"), 0),
                _number(mean(rr, "requests_per_s"), 0),
                f"{mean(bidi, 'requests_per_s') / max(mean(rr, 'requests_per_s'), 1e-9):.2f}",
                f"{_number(mean(bidi, 'p50_ms'), 1)} / {_number(mean(bidi, 'p99_ms'), 1)}",
                f"{_number(mean(rr, 'p50_ms'), 1)} / {_number(mean(rr, 'p99_ms'), 1)}",
                pair("requests_per_invocation", 2),
                pair("request_bytes_per_invocation", 0),
                pair("response_bytes_per_invocation", 0),
                pair("durio_cpu_ms_per_invocation", 2),
                pair("deployment_cpu_ms_per_invocation", 2),
            ]
        )
    return _format(body, header, left_columns=1)


def _print_report(document: dict[str, typing.Any], args: argparse.Namespace) -> None:
    print(f"\n{machine_line(document['machine'])}; at end {document.get('load_average_at_end')}")
    print(
        f"{args.duration:g} s per row after {args.warmup:g} s warm-up; closed loop; fsync on; a fresh durio server "
        f"per phase; bytes are service-protocol body bytes (no HTTP framing); per-invocation figures over the "
        f"whole loadgen run\n"
    )
    rows = document.get("rows", [])
    if rows:
        print(rows_table(rows))
        print("\nMeans over the rounds:")
        print(summary_table(rows))
    failed = [row for row in rows if row["invocations_failed"] or row["attempt_failures"]]
    for row in failed:
        print(
            f"  {row['workload']} {row['mode']} c={row['concurrency']}: {row['invocations_failed']} invocations failed, "
            f"{row['attempt_failures']} attempts failed"
        )
    notes = error_notes(rows)
    if notes:
        print("\nErrors:\n" + notes)


if __name__ == "__main__":
    sys.exit(main())
