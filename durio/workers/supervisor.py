"""The supervising parent: forks the worker processes, restarts any that dies, stops them all on SIGTERM.

It does no request work and runs no event loop, so forking from it is safe:
each worker starts from the parent's state (the services already imported)
and builds its own loop, storage handle and listeners. Workers die with their
parent (PR_SET_PDEATHSIG), so a kill -9 of the parent leaves nothing behind.

Before it forks, the parent opens the server's listening sockets, which the
workers inherit and all accept from (see listen_for_workers), so a worker's
restart loses neither the port nor the connections waiting on it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import time
import typing

from durio.addresses import Address

log = logging.getLogger("durio.workers")

# A worker that exits with this status hit an error a restart cannot fix (bad configuration): the server stops.
EXIT_FATAL = 78
RESTART_DELAYS = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0)
QUICK_DEATH_S = 5.0  # a worker that dies sooner than this after its start is restarted after a growing delay
STOP_TIMEOUT_S = 20.0
PORT_BUSY_WAIT_S = 10.0  # a previous server's dying workers may hold the port a moment longer
_PR_SET_PDEATHSIG = 1


class PortInUse(OSError):
    """Another program listens on the address."""


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def listen_for_workers(address: Address, backlog: int = 1024) -> tuple[Address, socket.socket]:
    """The server's listening socket on `address` (port 0: one the kernel picks), for every worker to accept on.

    The parent holds it and never accepts: the workers inherit it across fork and share its one queue, so a
    connection waiting there when a worker dies is taken by another worker, not reset. (With one SO_REUSEPORT
    socket per worker, the kernel resets what is queued on a dying worker's socket, and it keeps routing new
    connections to that socket until the worker's last thread has exited.)"""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    deadline = time.monotonic() + PORT_BUSY_WAIT_S
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
            sock.listen(backlog)
            sock.setblocking(False)
            return Address(address.host, sock.getsockname()[1]), sock
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline or address.port == 0:
                raise PortInUse(exc.errno, f"cannot listen on {address}: {exc.strerror}") from None
            time.sleep(0.1)


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: an orphaned worker then lives until it is stopped
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


class Supervisor:
    def __init__(
        self, workers: int, run_worker: typing.Callable[[int], int], on_reaped: typing.Callable[[int], None] | None = None
    ) -> None:
        self.workers = workers
        self._run_worker = run_worker
        self._on_reaped = on_reaped  # told the index of each worker that died, before it is restarted
        self._pids: dict[int, int] = {}  # pid -> worker index
        self._started: dict[int, float] = {}
        self._quick_deaths: dict[int, int] = {}
        self._due: dict[int, float] = {}  # worker index -> when its held-back restart is due (monotonic)
        self._stopping = False
        self._exit_status = 0

    def run(self) -> int:
        """Run the workers until SIGTERM or SIGINT; the exit status of the server."""
        previous = {signum: signal.signal(signum, self._stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGALRM] = signal.getsignal(signal.SIGALRM)
        try:
            for index in range(self.workers):
                self._start(index)
            while self._pids or self._due:
                self._start_due()
                try:
                    # While a restart is held back, poll: the other workers' deaths must not wait for it.
                    pid, status = os.waitpid(-1, os.WNOHANG if self._due else 0)
                except ChildProcessError:
                    pid = 0
                if pid == 0:
                    if not self._due:
                        break
                    time.sleep(max(0.0, min(0.05, min(self._due.values()) - time.monotonic())))
                    continue
                if pid not in self._pids:
                    continue
                index = self._pids.pop(pid)
                if self._on_reaped is not None:
                    self._on_reaped(index)
                code = os.waitstatus_to_exitcode(status)
                if self._stopping:
                    continue
                if code == EXIT_FATAL:
                    log.error("worker %d cannot run; stopping the server", index)
                    self._exit_status = 1
                    self._stop(signal.SIGTERM, None)
                    continue
                self._restart(index, code)
        finally:
            signal.alarm(0)
            for signum, handler in previous.items():
                if handler is not None:  # None: set outside Python, cannot be put back
                    signal.signal(signum, handler)
        return self._exit_status

    def _restart(self, index: int, code: int) -> None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        lived = time.monotonic() - self._started.get(index, 0.0)
        quick = self._quick_deaths[index] = self._quick_deaths.get(index, 0) + 1 if lived < QUICK_DEATH_S else 0
        delay = RESTART_DELAYS[min(quick, len(RESTART_DELAYS) - 1)]
        log.warning("worker %d %s; restarting it%s", index, how, f" in {delay:.1f} s" if delay else "")
        if delay:
            self._due[index] = time.monotonic() + delay
        elif not self._stopping:
            self._start(index)

    def _start_due(self) -> None:
        if self._stopping:
            self._due.clear()
            return
        now = time.monotonic()
        for index, due in sorted(self._due.items()):
            if due <= now:
                del self._due[index]
                self._start(index)

    def _start(self, index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _die_with_parent(parent)
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                code = self._run_worker(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self._pids[pid] = index
        self._started[index] = time.monotonic()

    def _stop(self, signum: int, _frame: typing.Any) -> None:
        if not self._stopping:
            log.info("received %s, stopping the workers", signal.Signals(signum).name)
        self._stopping = True
        for pid in list(self._pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        signal.signal(signal.SIGALRM, self._kill_stragglers)
        signal.alarm(int(STOP_TIMEOUT_S))

    def _kill_stragglers(self, _signum: int, _frame: typing.Any) -> None:
        for pid in list(self._pids):
            log.warning("a worker (pid %d) did not stop in %.0f s; killing it", pid, STOP_TIMEOUT_S)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
