"""Spreading connections evenly over the workers that accept from one shared listening socket.

Every worker waits on the same socket, and the kernel wakes them all for each
new connection: whichever gets to `accept` first takes it, and that is
usually the same one (a burst of 64 connections went 56 to 8). So each worker
publishes how many connections it holds in a small map shared by all the
processes (set up by the parent before it forks), and one that holds more
than a live sibling lets the next connection wait for that sibling for a
moment. A sibling that does not take it (busy, or dead: the parent marks
workers down as it reaps them) is not waited for long.
"""

from __future__ import annotations

import mmap
import struct

import anyio

_SLOT = struct.Struct("=ii")  # open connections, alive (1) or not (0)
# How long a worker holding more connections than a sibling leaves a new connection for that sibling.
DEFER_S = 0.002
DEFER_ROUNDS = 5


class ConnectionShares:
    """The shared map: made before fork, so that the parent and every worker see the same memory."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._map = mmap.mmap(-1, _SLOT.size * workers)

    def _read(self, worker: int) -> tuple[int, int]:
        return _SLOT.unpack_from(self._map, worker * _SLOT.size)

    def _write(self, worker: int, connections: int, alive: int) -> None:
        _SLOT.pack_into(self._map, worker * _SLOT.size, connections, alive)

    def mark_down(self, worker: int) -> None:
        """The parent reaped this worker: its connections are gone with it."""
        self._write(worker, 0, 0)

    def share_of(self, worker: int) -> "WorkerShare":
        return WorkerShare(self, worker)


class WorkerShare:
    """One worker's view: it counts its own connections and defers to siblings that hold fewer."""

    def __init__(self, shares: ConnectionShares, worker: int) -> None:
        self._shares = shares
        self._worker = worker
        self._connections = 0
        shares._write(worker, 0, 1)

    def opened(self) -> None:
        self._connections += 1
        self._shares._write(self._worker, self._connections, 1)

    def closed(self) -> None:
        self._connections -= 1
        self._shares._write(self._worker, self._connections, 1)

    def _fewest_elsewhere(self) -> int | None:
        counts = [self._shares._read(w)[0] for w in range(self._shares.workers) if w != self._worker and self._shares._read(w)[1]]
        return min(counts) if counts else None

    async def before_accept(self) -> None:
        """Wait a little while a live sibling holds fewer connections than this worker."""
        for _ in range(DEFER_ROUNDS):
            fewest = self._fewest_elsewhere()
            if fewest is None or self._connections <= fewest:
                return
            await anyio.sleep(DEFER_S)
