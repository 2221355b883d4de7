"""`make bench`: measure durio's workloads and, in the same run, the ceilings they must be read against.

    .venv/bin/python benchmarks/run.py [--duration 5] [--warmup 1] [--concurrency 1,16,64]
                                       [--workloads noop,steps,...] [--skip-ceilings]

1. Ceilings. The load generator against trivial_server.py (the client's own
   limit) and against trivial_asgi.py (an empty ASGI app on hypercorn's Trio
   worker with durio's settings: the HTTP stack's limit).
2. durio. `python -m durio.cli serve benchmarks/durio_app.py --backend B --workers W`
   (W from --durio-workers, default auto: one worker process per usable CPU) for
   each backend (trio, asyncio, uvloop by default), each in a fresh data
   directory (fsync on, as shipped), then every workload at every concurrency,
   the backends' rows alternating (so that the machine's drift does not favour
   one), each row a warm-up and a measured window of loadgen.py in its own process.
   Per row: req/s, p50, p99 from the client; the server's RSS at the row's end
   and its CPU seconds per 1,000 requests over exactly the measured window (both
   summed over the server's process tree: the supervising parent and its workers),
   and the client's own CPU over the same window.
3. One table on stdout, everything (with histograms and machine info) in
   benchmarks/results/<UTC timestamp>.json.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import typing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from machine import filesystem_type, machine_info  # noqa: E402
from processes import ServerDied, ServerProcess, die_with_parent, free_ports  # noqa: E402
from procstats import ProcessGone, tree_memory_megabytes  # noqa: E402
from report import backend_table, ceiling_table, durio_table, error_notes, finish, machine_line  # noqa: E402
from workloads import CEILING_SCENARIO, WORKLOADS  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
BACKENDS = ("trio", "asyncio", "uvloop")  # durio.backend.BACKENDS (the benchmark imports nothing of durio)
# The backend the comparisons with Restate use (make bench-compare): the fastest in make bench's backend
# columns (benchmarks/RESULTS.md says by how much). Users' default stays trio (durio.backend).
BENCH_BACKEND = "uvloop"
PYTHON = sys.executable


class LoadgenFailed(Exception):
    """The load generator itself failed (not the server: its errors are counted, not raised)."""


def measure(
    url: str, scenario: dict[str, typing.Any], concurrency: int, args: argparse.Namespace, server: ServerProcess, duration: float
) -> dict[str, typing.Any]:
    """One row: run loadgen.py against `url` in its own process, then read the server's memory (its whole tree)."""
    server.check_alive()
    argv = [
        PYTHON,
        str(HERE / "loadgen.py"),
        "--url",
        url,
        "--scenario",
        json.dumps(scenario),
        "-c",
        str(concurrency),
        "-d",
        str(duration),
        "-w",
        str(args.warmup),
        "--timeout",
        str(args.timeout),
        "--watch-pid",
        str(server.pid),
        "--json",
    ]
    budget = args.warmup + duration + args.timeout + 60  # warm-up, window, drain, slack
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=budget, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise LoadgenFailed(f"loadgen did not finish within {budget:.0f} s") from None
    server.check_alive()  # a server that died mid-row explains its errors better than the numbers do
    if done.returncode != 0:
        raise LoadgenFailed(f"loadgen exited with status {done.returncode}:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout)
    try:
        memory = tree_memory_megabytes(server.pid)
    except ProcessGone:
        server.check_alive()
        raise
    row["server_rss_mb"] = memory["rss"]
    row["server_rss_anon_mb"] = memory.get("anon")
    row["server_rss_file_mb"] = memory.get("file")
    cpu = row.get("server_cpu_s")
    row["server_cpu_s_per_1k"] = cpu / row["cycles"] * 1000 if cpu is not None and row["cycles"] else None
    return row


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_ceilings(args: argparse.Namespace, logs: pathlib.Path, rows: list[dict[str, typing.Any]]) -> None:
    """Append a row per ceiling and concurrency to `rows` (as they come, so a failure keeps the ones measured)."""
    contenders = [
        ("client ceiling (raw asyncio server)", [PYTHON, str(HERE / "trivial_server.py")], "trivial_server"),
        ("trivial ASGI on hypercorn-trio (stock)", [PYTHON, str(HERE / "trivial_asgi.py")], "trivial_asgi_stock", "stock"),
        ("trivial ASGI on hypercorn (durio's driver)", [PYTHON, str(HERE / "trivial_asgi.py")], "trivial_asgi_durio", "durio"),
    ]
    for label, argv, log_name, *extra in contenders:
        (port,) = free_ports(1)
        server = ServerProcess(label, [*argv, f"127.0.0.1:{port}", *extra], logs / f"{log_name}.log")
        try:
            server.wait_until_answering(port, "/")
            for concurrency in args.concurrency:
                progress(f"  {label}, {concurrency} connections ...")
                row = measure(f"http://127.0.0.1:{port}", CEILING_SCENARIO, concurrency, args, server, args.ceiling_duration)
                rows.append({"ceiling": label, **row})
        finally:
            server.stop()


def run_durio(args: argparse.Namespace, data_dir: pathlib.Path, logs: pathlib.Path, rows: list[dict[str, typing.Any]]) -> None:
    """Append a row per workload, concurrency and backend to `rows` (one server per backend, all up at once)."""
    servers: dict[str, tuple[ServerProcess, int]] = {}
    try:
        for backend in args.backends:
            ingress, admin = free_ports(2)
            argv = [
                PYTHON,
                "-m",
                "durio.cli",
                "serve",
                str(HERE / "durio_app.py"),
                "--data-dir",
                str(data_dir / backend),
                "--ingress",
                f"127.0.0.1:{ingress}",
                "--admin",
                f"127.0.0.1:{admin}",
                "--backend",
                backend,
                "--workers",
                args.durio_workers,
            ]
            servers[backend] = (ServerProcess(f"durio ({backend})", argv, logs / f"durio-{backend}.log"), ingress)
        for server, ingress in servers.values():
            server.wait_until_answering(ingress, "/restate/health")
        for name in args.workloads:
            workload = WORKLOADS[name]
            for concurrency in args.concurrency:
                for backend, (server, ingress) in servers.items():
                    progress(f"  {name}, {concurrency} connections, {backend} ...")
                    row = measure(f"http://127.0.0.1:{ingress}", workload.scenario, concurrency, args, server, args.duration)
                    rows.append({"workload": name, "backend": backend, **row})
    finally:
        for server, _ in servers.values():
            server.stop()


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _backend_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown backend(s) {', '.join(unknown) or '(none)'}; known: {', '.join(BACKENDS)}")
    return names


def _workers(text: str) -> str:
    if text == "auto" or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"a number of worker processes or 'auto', not {text!r}")


def _workload_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark durio's workloads against the client and HTTP-stack ceilings.")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per row (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each row (default 1)")
    parser.add_argument("--ceiling-duration", type=float, help="measured seconds per ceiling row (default: --duration)")
    parser.add_argument("--concurrency", type=_int_list, default=[1, 16, 64], help="comma-separated (default 1,16,64)")
    parser.add_argument(
        "--workloads",
        type=_workload_list,
        default=list(WORKLOADS),
        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--backends",
        type=_backend_list,
        default=list(BACKENDS),
        help=f"comma-separated event loops durio runs on, from {','.join(BACKENDS)} (default: all)",
    )
    parser.add_argument(
        "--durio-workers",
        type=_workers,
        default="auto",
        help="durio serve --workers: worker processes, a number or auto (one per usable CPU; the default, "
        "as `durio serve` has it)",
    )
    parser.add_argument("--skip-ceilings", action="store_true", help="measure durio only")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    parser.add_argument("--keep-data", action="store_true", help="keep durio's data directory and the server logs")
    return parser


def _data_parent() -> pathlib.Path:
    """Where durio's data directory goes: the system temp dir, unless that is tmpfs (fsync would be free there)."""
    system_tmp = pathlib.Path(tempfile.gettempdir())
    if filesystem_type(system_tmp) in ("tmpfs", "ramfs"):
        parent = HERE / ".work"
        parent.mkdir(exist_ok=True)
        return parent
    return system_tmp


def _exit_on_sigterm(signum: int, frame: typing.Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args.ceiling_duration = args.ceiling_duration or args.duration
    started = datetime.datetime.now(datetime.timezone.utc)
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-bench-", dir=_data_parent()))
    data_dir, logs = work / "data", work / "logs"
    logs.mkdir()
    document: dict[str, typing.Any] = {
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "ceiling_duration_s": args.ceiling_duration,
            "concurrency": args.concurrency,
            "workloads": args.workloads,
            "timeout_s": args.timeout,
            "backends": args.backends,
            "durio_workers": args.durio_workers,
            "durio_data_filesystem": filesystem_type(work),
            "fsync": "durio default (on)",
            "client": "benchmarks/loadgen.py, one thread per keep-alive connection, closed loop",
        },
        "workloads": {name: WORKLOADS[name].description for name in args.workloads},
    }
    failure = None
    try:
        if not args.skip_ceilings:
            progress("measuring the ceilings")
            run_ceilings(args, logs, document.setdefault("ceilings", []))
        progress(f"measuring durio (data in {data_dir})")
        run_durio(args, data_dir, logs, document.setdefault("rows", []))
    except (ServerDied, LoadgenFailed, ProcessGone) as exc:
        failure = exc
        document["failure"] = str(exc)
    except KeyboardInterrupt:
        progress("interrupted: servers stopped, nothing written")
        return 130
    finally:
        if not args.keep_data and failure is None:
            shutil.rmtree(work, ignore_errors=True)
    return finish(document, started, "", lambda: _print_report(document, args), failure, logs)


def _print_report(document: dict[str, typing.Any], args: argparse.Namespace) -> None:
    machine = document["machine"]
    print(f"\n{machine_line(machine)}")
    print(
        f"{args.duration:g} s per row after {args.warmup:g} s warm-up; closed loop, one request in flight per connection; "
        f"fsync on; durio --workers {args.durio_workers} (RSS and CPU: the server's whole process tree)\n"
    )
    rows = document.get("rows", [])
    if rows:
        backends = list(dict.fromkeys(row.get("backend", "trio") for row in rows))
        if len(backends) > 1:
            print("req/s (p99 ms) per backend; the last column is the fastest backend and its lead over the next:")
            print(backend_table(rows, backends))
        for backend in backends:
            print(f"\ndurio on {backend}:")
            print(durio_table([row for row in rows if row.get("backend", "trio") == backend]))
        if any(row["workload"] == "awakeable" for row in rows):
            print("(awakeable: a request is one cycle of 3 HTTP requests: send the waiter, resolve, attach)")
    ceilings = document.get("ceilings", [])
    if ceilings:
        print("\nCeilings, measured in the same run (same request as noop; the server does no work):")
        print(ceiling_table(ceilings))
    notes = error_notes(rows + ceilings)
    if notes:
        print("\nErrors:\n" + notes)


if __name__ == "__main__":
    sys.exit(main())
