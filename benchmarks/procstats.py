"""What a process costs, read from Linux's /proc: CPU seconds used and resident memory, of one process or of a
process and all its descendants (a server that forks workers costs what its whole tree costs)."""

from __future__ import annotations

import os

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ProcessGone(Exception):
    """The process exited (or never existed)."""


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name: field 3 of the man page is index 0."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGone(pid) from None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    return stat[stat.rindex(b")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (every thread: /proc/<pid>/stat sums the thread group)."""
    fields = _stat_fields(pid)
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the man page
    return (utime + stime) / _TICKS_PER_SECOND


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants, parents first (from /proc: the ppid of every process).

    A server that forks workers (durio's supervisor and its workers; hypercorn runs its app in a
    spawned child, with multiprocessing's resource tracker beside it) costs what the whole tree costs.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry))[1])
        except ProcessGone:
            continue  # exited meanwhile
        children.setdefault(parent, []).append(int(entry))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        queue.extend(sorted(children.get(current, [])))
    return tree


def tree_cpu_seconds(pid: int) -> tuple[float, dict[int, float]]:
    """CPU seconds of `pid` and every descendant, and each live process's own share.

    The total also counts the children each process has already waited for (cutime + cstime of
    /proc/<pid>/stat), so a worker that died and was reaped by its supervisor between two readings
    still counts (its time moves into the parent's), and no process counts twice: a process in
    the tree is alive, a reaped one is only in its parent's children's time. Raises ProcessGone if
    `pid` itself is gone; a descendant that exits while the tree is read is skipped.
    """
    total = 0.0
    own: dict[int, float] = {}
    for index, member in enumerate(process_tree(pid)):
        try:
            fields = _stat_fields(member)
        except ProcessGone:
            if index == 0:
                raise
            continue
        utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))  # fields 14-17 of the man page
        own[member] = (utime + stime) / _TICKS_PER_SECOND
        total += (utime + stime + cutime + cstime) / _TICKS_PER_SECOND
    return total, own


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


def tree_memory_megabytes(pid: int) -> dict[str, float]:
    """memory_megabytes summed over `pid` and its descendants (RSS counts pages the processes share once
    per process: for durio's workers, the LMDB map they all touch and what they inherited from the parent)."""
    total: dict[str, float] = {}
    for index, member in enumerate(process_tree(pid)):
        try:
            memory = memory_megabytes(member)
        except ProcessGone:
            if index == 0:
                raise
            continue
        for name, value in memory.items():
            total[name] = total.get(name, 0.0) + value
    return total


def machine_cpu_seconds() -> dict[str, float]:
    """The whole machine's CPU time since boot, summed over its cores (/proc/stat's first line): `busy` (user,
    nice, system, irq, softirq) and `steal` (time the hypervisor gave this VM's cores to someone else).

    Two readings around a window show how much of the machine was busy, whoever it was busy for: on a shared
    machine, what the measured processes and the client did not use of it went to other work.
    """
    with open("/proc/stat", "rb") as file:
        fields = [int(value) for value in file.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return {"busy": (user + nice + system + irq + softirq) / _TICKS_PER_SECOND, "steal": steal / _TICKS_PER_SECOND}


def tree_run_queue_waits(pid: int) -> dict[tuple[int, int], float]:
    """Seconds each thread of `pid` and its descendants has spent runnable but waiting for a CPU, by (pid, tid):
    the second field of /proc/<pid>/task/<tid>/schedstat.

    Subtract two readings thread by thread (run_queue_wait_between): over a window, divided by its length,
    it is how many of the server's threads were, on average, ready to run while the machine's cores were
    busy with something else: on a shared machine, CPU the server wanted and did not get.
    """
    waits: dict[tuple[int, int], float] = {}
    for member in process_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{member}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{member}/task/{task}/schedstat", "rb") as file:
                    waits[(member, int(task))] = int(file.read().split()[1]) / 1e9
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return waits


def run_queue_wait_between(before: dict[tuple[int, int], float], after: dict[tuple[int, int], float]) -> float:
    """The run-queue wait of the threads alive at the end, over the window (a thread started within it, from
    zero); a thread that ended within the window takes its share with it, so this can only undercount."""
    return sum(wait - before.get(thread, 0.0) for thread, wait in after.items())
