"""Servers under test as child processes: start on a free loopback port, wait until they answer,
notice when they die, and always stop them.

Every child (the load generator too) asks the kernel to SIGTERM it if the
benchmark itself dies (PR_SET_PDEATHSIG), so an interrupted or killed run
never leaves a server holding a port or a client burning a core.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import pathlib
import signal
import socket
import subprocess
import time
import typing

from procstats import process_tree

_PR_SET_PDEATHSIG = 1


class ServerDied(Exception):
    """A server exited while the benchmark needed it; the message carries the end of its log."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nothing listens on right now (the kernel's picks).

    All the sockets stay bound until every port is picked, so the picks differ.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (with the pid, it names one process for good)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22 of the man page


def die_with_parent() -> None:
    """For preexec_fn: the child gets SIGTERM when the benchmark dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the finally blocks in run.py still stop the servers


class ServerProcess:
    """One server under test, its output kept in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: pathlib.Path,
        env: dict[str, str] | None = None,
        inherit_env: dict[str, str] | None = None,
    ) -> None:
        """`env` is added to `inherit_env` (default: this process's environment)."""
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**(os.environ if inherit_env is None else inherit_env), **(env or {})},
            preexec_fn=die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise ServerDied(f"{self.name} {how}; the end of its log ({self.log_path}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_until_answering(self, port: int, path: str, timeout: float = 60.0) -> None:
        """Poll GET `path` on 127.0.0.1:`port` until it answers 200."""
        deadline = time.monotonic() + timeout
        last_error: typing.Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", path)
                status = connection.getresponse().status
                connection.close()
                if status == 200:
                    return
                last_error = f"HTTP {status}"
            except OSError as exc:
                last_error = exc
            time.sleep(0.1)
        raise ServerDied(
            f"{self.name} did not answer GET {path} on port {port} within {timeout:.0f} s "
            f"(last: {last_error}); its log:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after `grace` seconds.

        Descendants it leaves behind (a worker of a server killed before it could
        stop them) get SIGKILL too: only those seen under it just before the stop.
        """
        descendants = []
        if self.process.poll() is None:
            descendants = [(pid, _start_time(pid)) for pid in process_tree(self.pid)[1:]]
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid, started in descendants:
            if started is not None and _start_time(pid) == started:  # the same process, not a reused pid
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._log.close()
