"""What a process costs, read from Linux's /proc: CPU seconds used and resident memory."""

from __future__ import annotations

import os

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ProcessGone(Exception):
    """The process exited (or never existed)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (every thread: /proc/<pid>/stat sums the thread group)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except FileNotFoundError:
        raise ProcessGone(pid) from None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the man page
    return (utime + stime) / _TICKS_PER_SECOND


def memory_megabytes(pid: int) -> dict[str, float]:
    """Resident memory in MiB: `rss` (VmRSS, what the table shows), and its parts `anon` (the heap:
    Python objects) and `file` (mapped files: for durio mostly LMDB's map, which grows with the data)."""
    fields = {b"VmRSS:": "rss", b"RssAnon:": "anon", b"RssFile:": "file", b"RssShmem:": "shmem"}
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                name = fields.get(line.split(b"\t", 1)[0].split(b" ", 1)[0])
                if name is not None:
                    found[name] = int(line.split()[1]) / 1024  # reported in kB
    except FileNotFoundError:
        raise ProcessGone(pid) from None
    if "rss" not in found:
        raise ProcessGone(pid)  # a zombie has no VmRSS line
    return found
