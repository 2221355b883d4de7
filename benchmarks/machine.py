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
