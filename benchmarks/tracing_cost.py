"""What OpenTelemetry tracing costs durio: the `steps` workload with tracing off, on, and off again.

    .venv/bin/python benchmarks/tracing_cost.py [--duration 5] [--concurrency 1,16] [--rounds 2]

Each round runs benchmarks/run.py (durio only, `steps`) three times: without
OTEL_* variables (off), with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local
OTLP/HTTP sink (on: every span exported over HTTP, counted by the sink), and
off again, so drift on a shared machine shows as the difference between the two
"off" runs. It prints req/s and CPU per 1,000 requests for each.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import typing

HERE = pathlib.Path(__file__).resolve().parent


@contextlib.contextmanager
def otlp_sink() -> typing.Iterator[tuple[str, list[int]]]:
    """An OTLP/HTTP endpoint that takes trace exports and counts their spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: PLC0415

    counted = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers.get("content-length", "0"))))
            counted[0] += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: typing.Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counted
    finally:
        server.shutdown()
        server.server_close()


def run_steps(args: argparse.Namespace, env: dict[str, str]) -> list[dict[str, typing.Any]]:
    command = [
        sys.executable,
        str(HERE / "run.py"),
        "--workloads",
        "steps",
        "--skip-ceilings",
        "--concurrency",
        args.concurrency,
        "--duration",
        str(args.duration),
        "--warmup",
        "1",
    ]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"results: (\S+)", finished.stdout)
    if finished.returncode != 0 or found is None:
        raise SystemExit(f"run.py failed:\n{finished.stdout}\n{finished.stderr}")
    path = HERE.parent / found.group(1)
    rows = json.loads(path.read_text())["rows"]
    path.unlink()  # the figures are printed below; these runs are not benchmark results of their own
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    plain = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    print(f"{'round':<6} {'tracing':<8} {'conc':>4} {'req/s':>8} {'CPU s/1k':>9} {'spans exported':>15}")
    with otlp_sink() as (url, counted):
        traced = {**plain, "OTEL_EXPORTER_OTLP_ENDPOINT": url}
        for round_number in range(1, args.rounds + 1):
            for label, env in (("off", plain), ("on", traced), ("off", plain)):
                before = counted[0]
                for row in run_steps(args, env):
                    print(
                        f"{round_number:<6} {label:<8} {row['concurrency']:>4} {row['requests_per_s']:>8.0f} "
                        f"{row.get('server_cpu_s_per_1k') or 0:>9.3f} {counted[0] - before if label == 'on' else 0:>15,}"
                    )


if __name__ == "__main__":
    main()
