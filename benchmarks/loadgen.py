"""A closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending its next request
as soon as the previous answer arrives, for a fixed time after a warm-up.

    python benchmarks/loadgen.py --url http://127.0.0.1:8080 -c 16 -d 5 \\
        --method POST --path '/restate/call/Counter/{key}/add' --body 1 --keys 1000

or with a multi-step scenario (see scenario.py) as JSON: --scenario '{"steps": [...]}'.

It runs in its own process (never inside the server it measures) and reports
requests/s, latency percentiles from a log-bucket histogram, and errors; with
--watch-pid it also reads the CPU time of that process and all its descendants (a
server's worker processes) at the exact edges of the measured window, so CPU per
request covers the same requests as the rate; its own CPU over the same window is
client_cpu_s (on a machine whose cores the client shares with the server, what the
client burns is what the server cannot have).

Why one thread per connection with blocking sockets: measured against
benchmarks/trivial_server.py on this 2-core machine, it cost the client 9-15 µs
of CPU per request (55-77k req/s), against 20-25 µs (~40k req/s) for the same
client on asyncio protocols; bare loops on asyncio streams and trio streams
already cost 15-20 µs (README.md has the table). A blocking recv releases the
GIL and needs no event loop turn (no epoll, no task wake-up) per response; at
the concurrencies we run (a few hundred at most) the threads cost only memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import sys
import threading
import time
import typing
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from histogram import Histogram  # noqa: E402
from http_wire import ProtocolError, Response, ResponseReader  # noqa: E402
from procstats import ProcessGone, tree_cpu_seconds  # noqa: E402
from scenario import Scenario, ScenarioError, parse_scenario  # noqa: E402

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# A thread whose response has arrived waits for the GIL at most this long (default 5 ms would show in p99).
_SWITCH_INTERVAL_S = 0.0005
# Error texts include a bit of the response body: keep the set bounded when every body differs.
_MAX_ERROR_REASONS = 20


class ConnectionBroken(Exception):
    """The connection closed, reset, timed out, or spoke bad HTTP; the request's outcome is unknown."""


class _Connection:
    """One keep-alive connection with one request in flight at a time."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise ConnectionBroken(f"connect: {_describe(exc)}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = ResponseReader()
        self.closed = False

    def exchange(self, request: bytes) -> Response:
        try:
            self.sock.sendall(request)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionBroken("connection closed by the server")
                responses = self.reader.feed(data)
                if responses:
                    if len(responses) > 1:
                        raise ConnectionBroken("unsolicited response")
                    return responses[0]
        except (OSError, ProtocolError, ValueError) as exc:
            self.close()
            raise ConnectionBroken(_describe(exc)) from None
        except ConnectionBroken:
            self.close()
            raise

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


class _Window:
    """The switches every connection thread reads: record now? stop now?"""

    def __init__(self) -> None:
        self.recording = False
        self.stopping = False


class _Tally:
    """What one connection saw inside the window; merged at the end (no locks on the hot path)."""

    def __init__(self) -> None:
        self.histogram = Histogram()
        self.cycles = 0
        self.http_requests = 0
        self.errors: dict[str, int] = {}


def _drive(
    host: str,
    port: int,
    scenario: Scenario,
    conn_index: int,
    run_token: str,
    timeout: float,
    window: _Window,
    tally: _Tally,
    live: list[_Connection | None],
) -> None:
    """One connection's closed loop: cycle after cycle until told to stop."""
    host_header = f"{host}:{port}"
    steps = scenario.steps
    keys = scenario.keys
    conn_text = str(conn_index)
    connection: _Connection | None = None
    sequence = 0
    perf_counter_ns = time.perf_counter_ns
    while not window.stopping:
        variables = {"key": f"k{random.randrange(keys)}", "conn": conn_text, "run": run_token, "n": str(sequence)}
        sequence += 1
        started = perf_counter_ns()
        failed = None
        for step in steps:
            try:
                if connection is None or connection.closed:
                    connection = live[conn_index] = _Connection(host, port, timeout)
                response = connection.exchange(step.request(host_header, variables))
            except ConnectionBroken as exc:
                failed = str(exc)
                break
            if window.recording:
                tally.http_requests += 1
            if not response.keep_alive:
                connection.close()
            if response.status not in step.expect:
                failed = (
                    f"HTTP {response.status} on {step.method} {step.path.text}: {response.body[:120].decode(errors='replace')}"
                )
                break
            try:
                step.check_body(response, variables)
                step.take_captures(response, variables)
            except ScenarioError as exc:
                failed = str(exc)
                break
        if failed is None:
            if window.recording:
                tally.cycles += 1
                tally.histogram.record((perf_counter_ns() - started) // 1000)
        else:
            if window.recording:
                if failed not in tally.errors and len(tally.errors) >= _MAX_ERROR_REASONS:
                    failed = "other errors"
                tally.errors[failed] = tally.errors.get(failed, 0) + 1
            if connection is None or connection.closed:
                time.sleep(0.05)  # a dead server must not turn this into a busy loop
    if connection is not None:
        connection.close()


def run_load(
    url: str | list[str],
    scenario: Scenario,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    timeout: float = 30.0,
    drain: float = 10.0,
    watch_pid: int | None = None,
) -> dict[str, typing.Any]:
    """Load `url` with `concurrency` connections; return the measured window's figures as JSON-able data.

    Several URLs (the nodes of a cluster) share the connections round-robin: connection i talks to url i mod n.
    """
    addresses = [loopback_address(one) for one in ([url] if isinstance(url, str) else url)]
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    window = _Window()
    tallies = [_Tally() for _ in range(concurrency)]
    live: list[_Connection | None] = [None] * concurrency
    run_token = secrets.token_hex(4)
    if len(addresses) == 1:
        for step in scenario.steps:
            step.prepare("%s:%d" % addresses[0])  # encode constant requests once, before the threads share them
    threads = [
        threading.Thread(
            target=_drive,
            args=(*addresses[i % len(addresses)], scenario, i, run_token, timeout, window, tallies[i], live),
            name=f"conn-{i}",
            daemon=True,
        )
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    cpu_before = _cpu_or_none(watch_pid)
    client_cpu_before = time.process_time()  # this process, every thread: the connections' threads are the client
    window.recording = True
    window_start = time.perf_counter()
    time.sleep(duration)
    window.recording = False
    elapsed = time.perf_counter() - window_start
    client_cpu = time.process_time() - client_cpu_before
    cpu_after = _cpu_or_none(watch_pid)
    # Let in-flight requests finish unrecorded, so the next measurement starts on a quiet server.
    window.stopping = True
    drain_deadline = time.monotonic() + drain
    for thread in threads:
        thread.join(max(0.0, drain_deadline - time.monotonic()))
    undrained = sum(thread.is_alive() for thread in threads)
    for connection in live:
        if connection is not None:
            connection.close()  # unblocks a thread stuck on a server that never answers
    histogram = Histogram()
    errors: dict[str, int] = {}
    for tally in tallies:
        histogram.merge(tally.histogram)
        for reason, count in tally.errors.items():
            errors[reason] = errors.get(reason, 0) + count
    result: dict[str, typing.Any] = {
        "concurrency": concurrency,
        "duration_s": elapsed,
        "cycles": sum(tally.cycles for tally in tallies),
        "http_requests": sum(tally.http_requests for tally in tallies),
        "errors": sum(errors.values()),
        "error_reasons": errors,
        "undrained_connections": undrained,
        "histogram": histogram.to_json(),
        "client_cpu_s": client_cpu,
    }
    if watch_pid is not None:
        result["server_cpu_s"] = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return summarize(result)


def summarize(result: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """Add the derived figures (rates, percentiles) to a raw result."""
    histogram = Histogram.from_json(result["histogram"])
    duration = result["duration_s"] or 1e-9
    summary = dict(result)
    summary.update(
        {
            "requests_per_s": result["cycles"] / duration,
            "http_requests_per_s": result["http_requests"] / duration,
            "p50_ms": histogram.percentile(0.50) / 1000,
            "p90_ms": histogram.percentile(0.90) / 1000,
            "p99_ms": histogram.percentile(0.99) / 1000,
            "max_ms": histogram.max_us / 1000,
            "mean_ms": histogram.mean() / 1000,
        }
    )
    if result.get("client_cpu_s") is not None and result["cycles"]:
        summary["client_cpu_s_per_1k"] = result["client_cpu_s"] / result["cycles"] * 1000
    return summary


def _cpu_or_none(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return tree_cpu_seconds(pid)[0]
    except ProcessGone:
        return None


def loopback_address(url: str) -> tuple[str, int]:
    """(host, port) of a loopback http URL; anything else is refused: benchmarks never leave the machine."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise SystemExit(f"loadgen: refusing {url!r}: only http://127.0.0.1:PORT (loopback) is allowed")
    return parts.hostname, parts.port


# ------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Closed-loop HTTP/1.1 load generator (loopback only).")
    parser.add_argument(
        "--url", required=True, action="append", help="http://127.0.0.1:PORT; repeated, the connections take the URLs in turn"
    )
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="connections, each with one request in flight")
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("-w", "--warmup", type=float, default=1.0, help="unmeasured seconds before the window")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    parser.add_argument("--scenario", help="a JSON scenario (see scenario.py); overrides the single-request flags")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--body", help="request body template (sent as application/json)")
    parser.add_argument("--keys", type=int, default=1, help="how many distinct {key} values to draw from")
    parser.add_argument("--expect", type=int, nargs="*", default=[200], help="status codes that count as success")
    parser.add_argument(
        "--watch-pid", type=int, help="report the CPU seconds of this process and its descendants over the window"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenario:
        spec = json.loads(args.scenario)
    else:
        spec = {
            "keys": args.keys,
            "steps": [{"method": args.method, "path": args.path, "body": args.body, "expect": args.expect}],
        }
    try:
        scenario = parse_scenario(spec)
    except (ScenarioError, KeyError) as exc:
        print(f"loadgen: bad scenario: {exc}", file=sys.stderr)
        return 2
    summary = run_load(
        args.url if len(args.url) > 1 else args.url[0],
        scenario,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        watch_pid=args.watch_pid,
    )
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{summary['requests_per_s']:.0f} req/s over {summary['duration_s']:.1f} s, "
            f"{args.concurrency} connections: p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms, "
            f"max {summary['max_ms']:.2f} ms, {summary['errors']} errors"
        )
        for reason, count in sorted(summary["error_reasons"].items(), key=lambda item: -item[1]):
            print(f"  {count} × {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
