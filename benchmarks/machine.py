"""What a result was measured on: the machine, the Python, and the durio commit."""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess
import sys
import typing

REPO = pathlib.Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, typing.Any]:
    # A figure from a tree with uncommitted runtime changes is not the commit's figure: say so.
    durio_changes = _git("status", "--porcelain", "--", "durio")
    return {
        "cpu_model": _cpu_model(),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_mb": _memory_mb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "durio_commit": _git("rev-parse", "HEAD"),
        "durio_uncommitted_changes": bool(durio_changes) if durio_changes is not None else None,
        "load_average_at_start": _load_average(),
    }


def _memory_mb() -> int | None:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def filesystem_type(path: str | os.PathLike[str]) -> str | None:
    """The type of the filesystem holding `path` (ext4, tmpfs, ...), from /proc/mounts."""
    target = os.path.realpath(path)
    best, best_type = "", None
    try:
        for line in pathlib.Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            mount_point = fields[1].replace("\\040", " ")
            inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, best_type = mount_point, fields[2]
    except OSError:
        return None
    return best_type


def machine_state(directory: str | os.PathLike[str], probes: int = 20) -> dict[str, typing.Any]:
    """How busy the shared machine is right now: the load average, and how long an fdatasync of a 4 KiB write
    takes in `directory` (where the servers' data lives: every commit of theirs waits for one of these, and other
    programs' writes to the same disk slow it down)."""
    import statistics
    import tempfile
    import time

    timings = []
    with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-probe-") as file:
        block = os.urandom(4096)
        for _ in range(probes):
            os.write(file.fileno(), block)
            started = time.perf_counter()
            os.fdatasync(file.fileno())
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "load_average": _load_average(),
        "fdatasync_4k_ms": {"p50": round(statistics.median(timings), 3), "max": round(max(timings), 3), "probes": probes},
    }


def state_line(state: dict[str, typing.Any]) -> str:
    fsync = state["fdatasync_4k_ms"]
    return f"load average {state['load_average']}, fdatasync of 4 KiB p50 {fsync['p50']:.2f} ms (max {fsync['max']:.2f})"
