"""Turning measured rows into the printed table and the JSON file under benchmarks/results/."""

from __future__ import annotations

import datetime
import json
import pathlib
import sys
import typing

from machine import REPO

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"

Row = dict[str, typing.Any]


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _format(rows: list[list[str]], header: list[str], left_columns: int = 1) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = []
    for cells in [header, *rows]:
        lines.append(
            "  ".join(
                cell.ljust(width) if i < left_columns else cell.rjust(width) for i, (cell, width) in enumerate(zip(cells, widths))
            )
        )
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def durio_table(rows: list[Row]) -> str:
    # "anon MB" is the part of RSS that is heap; the rest is mostly LMDB's map, which grows with the data.
    header = ["workload", "conc", "req/s", "p50 ms", "p99 ms", "RSS MB", "anon MB", "CPU s/1k req", "errors"]
    body = [
        [
            row["workload"],
            str(row["concurrency"]),
            _number(row["requests_per_s"], 0),
            _number(row["p50_ms"], 2),
            _number(row["p99_ms"], 2),
            _number(row.get("server_rss_mb"), 1),
            _number(row.get("server_rss_anon_mb"), 1),
            _number(row.get("server_cpu_s_per_1k"), 3),
            str(row["errors"]),
        ]
        for row in rows
    ]
    return _format(body, header)


def backend_table(rows: list[Row], backends: list[str]) -> str:
    """One line per workload and concurrency, a column per backend: req/s (p99 ms), then the fastest and by how much."""
    header = ["workload", "conc", *backends, "fastest"]
    by_key: dict[tuple[str, int], dict[str, Row]] = {}
    for row in rows:
        by_key.setdefault((row["workload"], row["concurrency"]), {})[row.get("backend", "trio")] = row
    body = []
    for (workload, concurrency), found in by_key.items():
        cells = [
            f"{_number(found[b]['requests_per_s'], 0)} ({_number(found[b]['p99_ms'], 1)})" if b in found else "-"
            for b in backends
        ]
        ranked = sorted((r["requests_per_s"], b) for b, r in found.items() if r.get("requests_per_s"))
        fastest = "-"
        if len(ranked) >= 2:
            (best, best_name), (second, _) = ranked[-1], ranked[-2]
            fastest = f"{best_name} +{(best / second - 1) * 100:.0f}%"
        body.append([workload, str(concurrency), *cells, fastest])
    return _format(body, header)


def ceiling_table(rows: list[Row]) -> str:
    header = ["ceiling", "conc", "req/s", "p50 ms", "p99 ms", "RSS MB", "CPU s/1k req", "errors"]
    body = [
        [
            row["ceiling"],
            str(row["concurrency"]),
            _number(row["requests_per_s"], 0),
            _number(row["p50_ms"], 2),
            _number(row["p99_ms"], 2),
            _number(row.get("server_rss_mb"), 1),
            _number(row.get("server_cpu_s_per_1k"), 3),
            str(row["errors"]),
        ]
        for row in rows
    ]
    return _format(body, header)


def error_notes(rows: list[Row]) -> str:
    """The reasons behind any errors, so a non-zero count never goes unexplained."""
    notes = []
    for row in rows:
        for reason, count in sorted(row.get("error_reasons", {}).items(), key=lambda item: -item[1])[:5]:
            name = row.get("workload") or row.get("ceiling")
            notes.append(f"  {name} c={row['concurrency']}: {count} x {reason}")
    return "\n".join(notes)


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}"


def _latency(row: Row) -> str:
    return f"{_number(row['p50_ms'], 1)} / {_number(row['p99_ms'], 1)}"


def _parts(total: float | None, parts: list[float | None], digits: int) -> str:
    """ "total (a+b)": the Restate side's figure and its restate-server and SDK shares."""
    if total is None:
        return "-"
    return f"{total:,.{digits}f} ({'+'.join(_number(part, digits) for part in parts)})"


def compare_table(pairs: list[Row]) -> str:
    """durio and Restate side by side, a line per (workload, concurrency); ratio = durio / Restate req/s."""
    header = [
        "workload",
        "conc",
        "durio req/s",
        "Restate req/s",
        "durio/Restate",
        "durio p50/p99 ms",
        "Restate p50/p99 ms",
        "durio RSS MB",
        "Restate RSS MB (srv+sdk)",
        "durio CPU s/1k",
        "Restate CPU s/1k (srv+sdk)",
        "loadgen CPU s/1k d/R",
        "errors d/R",
    ]
    body = []
    for pair in pairs:
        durio, restate = pair.get("durio"), pair.get("restate")
        if durio is None or restate is None:
            continue
        body.append(
            [
                pair["workload"],
                str(pair["concurrency"]),
                _number(durio["requests_per_s"], 0),
                _number(restate["requests_per_s"], 0),
                _ratio(durio["requests_per_s"], restate["requests_per_s"]),
                _latency(durio),
                _latency(restate),
                _number(durio.get("server_rss_mb"), 0),
                _parts(
                    restate.get("server_rss_mb"),
                    [restate["components"][name].get("rss_mb") for name in ("restate-server", "sdk")],
                    0,
                ),
                _number(durio.get("server_cpu_s_per_1k"), 2),
                _parts(
                    restate.get("server_cpu_s_per_1k"),
                    [restate["components"][name].get("cpu_s_per_1k") for name in ("restate-server", "sdk")],
                    2,
                ),
                f"{_number(durio.get('client_cpu_s_per_1k'), 2)}/{_number(restate.get('client_cpu_s_per_1k'), 2)}",
                f"{durio['errors']}/{restate['errors']}",
            ]
        )
    return _format(body, header, left_columns=1)


def goal_table(pairs: list[Row], cores: int) -> str:
    """Per workload: durio against 3x Restate, p99 against p99, and what CPU per request leaves possible on `cores`.

    The bound is cores x 1000 / (durio's CPU s/1k + the load generator's CPU s/1k): the rate at which durio
    and the client, at the costs measured in durio's row, would keep every core busy. When it is below
    3x Restate's rate, 3x cannot be reached on this machine with this client, whatever durio does with its cores.
    """
    header = [
        "workload",
        "durio req/s",
        "3x Restate",
        "durio/Restate",
        "p99 d/R ms",
        "p99 lower",
        "durio CPU s/1k",
        "Restate CPU s/1k",
        "loadgen CPU s/1k",
        "cores busy d+lg",
        "other work cores",
        "waiting for a CPU",
        "bound req/s",
        "3x reachable",
    ]
    body = []
    for pair in pairs:
        durio, restate = pair.get("durio"), pair.get("restate")
        if durio is None or restate is None:
            continue
        durio_cpu, client_cpu = durio.get("server_cpu_s_per_1k"), durio.get("client_cpu_s_per_1k")
        bound = cores * 1000 / (durio_cpu + client_cpu) if durio_cpu and client_cpu else None
        busy = None
        if durio.get("server_cpu_s") is not None and durio.get("client_cpu_s") is not None and durio["duration_s"]:
            busy = (durio["server_cpu_s"] + durio["client_cpu_s"]) / durio["duration_s"]
        target = 3 * restate["requests_per_s"]
        body.append(
            [
                pair["workload"],
                _number(durio["requests_per_s"], 0),
                _number(target, 0),
                _ratio(durio["requests_per_s"], restate["requests_per_s"]),
                f"{_number(durio['p99_ms'], 1)} / {_number(restate['p99_ms'], 1)}",
                "yes" if durio["p99_ms"] < restate["p99_ms"] else "NO",
                _number(durio_cpu, 2),
                _number(restate.get("server_cpu_s_per_1k"), 2),
                _number(client_cpu, 2),
                _number(busy, 2),
                _number(durio.get("other_work_cores"), 2),
                _number(durio.get("run_queue_wait_threads"), 2),
                _number(bound, 0),
                "-" if bound is None else ("yes" if bound >= target else "NO"),
            ]
        )
    return _format(body, header, left_columns=1)


def write_results(document: dict[str, typing.Any], started: datetime.datetime, prefix: str = "") -> pathlib.Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{prefix}{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path


def machine_line(machine: dict[str, typing.Any]) -> str:
    """Which durio ran on what: the first line of every report."""
    changes = " (+ uncommitted changes)" if machine["durio_uncommitted_changes"] else ""
    return (
        f"durio {str(machine['durio_commit'])[:12]}{changes} on {machine['cpu_model']}, {machine['nproc']} CPUs, "
        f"Python {machine['python']}, load average at start {machine['load_average_at_start']}"
    )


def finish(
    document: dict[str, typing.Any],
    started: datetime.datetime,
    prefix: str,
    print_report: typing.Callable[[], None],
    failure: BaseException | None,
    logs: pathlib.Path,
) -> int:
    """Write the run's JSON, print its report, and say whether it failed; the exit status."""
    document["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    path = write_results(document, started, prefix=prefix)
    print_report()
    print(f"\nresults: {path.relative_to(REPO)}")
    if failure is not None:
        print(f"\nbenchmark FAILED: {failure}\n(logs kept in {logs})", file=sys.stderr)
        return 1
    return 0
