"""Real peers for the interoperability tests: deployments served by hypercorn, and the official Restate server."""

from __future__ import annotations

import glob
import os
import signal
import pathlib

import subprocess
import sys
import time
import typing

import httpx
import anyio
import anyio.abc

from tests.conftest import ROOT, free_port

RESTATE_BINARIES = ROOT / ".tools" / "restate" / "node_modules" / "@restatedev"


class Peer:
    """A child process listening on a port, stopped with kill -9 at the end."""

    def __init__(
        self, command: list[str], log_path: pathlib.Path, port: int, env: dict[str, str] | None = None, cwd: pathlib.Path = ROOT
    ) -> None:
        self.command = command
        self.log_path = log_path
        self.port = port
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, ready_path: str = "/health", timeout: float = 60.0) -> None:
        log = open(self.log_path, "ab")
        # Its own process group, so that stopping it also stops the workers it forks (hypercorn's).
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=str(self.cwd), start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command[0]} exited with {self.process.returncode}:\n{self.output()}")
                try:
                    response = await client.get(self.url + ready_path)
                    if response.status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.command} did not start:\n{self.output()}")
                await anyio.sleep(0.1)

    def output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def hypercorn_deployment(app: str, log_path: pathlib.Path, env: dict[str, str] | None = None, trio_worker: bool = False) -> Peer:
    """Serve an ASGI app (module:attr) over HTTP/1.1 with hypercorn."""
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}"]
    if trio_worker:
        command += ["--worker-class", "trio"]
    return Peer(command, log_path, port, env)


def restate_server_binary() -> str:
    found = glob.glob(str(RESTATE_BINARIES / "restate-server-*" / "bin" / "restate-server"))
    if not found:
        raise RuntimeError(
            "the official Restate server is not installed: `make test` installs it from the npm registry into .tools/restate"
        )
    return found[0]


class RestateServer(Peer):
    """The official Restate server (npm @restatedev/restate-server), on loopback ports."""

    def __init__(self, base_dir: pathlib.Path, log_path: pathlib.Path, env: dict[str, str] | None = None) -> None:
        self.ingress_port = free_port()
        self.admin_port = free_port()
        node_port = free_port()
        env = {
            "RESTATE_DISABLE_TELEMETRY": "true",
            "RESTATE_LISTEN_MODE": "tcp",
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{self.ingress_port}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{self.admin_port}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node_port}",
            "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{node_port}",
            "RESTATE_DEFAULT_NUM_PARTITIONS": "2",
            **(env or {}),
        }
        super().__init__([restate_server_binary(), "--base-dir", str(base_dir), "--no-logo"], log_path, self.admin_port, env)

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    async def register(self, uri: str) -> dict[str, typing.Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(self.admin_url + "/deployments", json={"uri": uri, "use_http_11": True})
        assert response.status_code in (200, 201), response.text
        return response.json()


class RawPeer:
    """A loopback HTTP peer on raw AnyIO sockets, for peers no HTTP server would be: silent, endless, dripping.

    `answer(peer, stream, head)` writes whatever it likes after the request head arrived; the peer
    records each request head and counts the body bytes its answers managed to send (`sent`).
    """

    def __init__(self, answer: typing.Callable[["RawPeer", anyio.abc.SocketStream, bytes], typing.Awaitable[None]]) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.sent = 0
        self.url = ""

    async def serve(self, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.url = f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}"
        task_status.started(self.url)
        async with listener:
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        head = b""
        async with stream:
            try:
                while b"\r\n\r\n" not in head:
                    try:
                        data = await stream.receive(65536)
                    except anyio.EndOfStream:
                        return
                    head += data
                self.heads.append(head.partition(b"\r\n\r\n")[0])
                await self.answer(self, stream, head)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # the client hung up: what the test checks is how much it took first

    async def send_body(self, stream: anyio.abc.SocketStream, size: int, chunk: bytes = b"\0" * 65536) -> None:
        """Send `size` bytes (or until the client hangs up), counting them in `sent`."""
        while self.sent < size:
            await stream.send(chunk)
            self.sent += len(chunk)

    def paths(self) -> list[bytes]:
        return [head.split(b" ")[1] for head in self.heads]
