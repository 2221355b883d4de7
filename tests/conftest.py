"""Shared fixtures: a real runtime on real LMDB files, real HTTP servers, real server processes."""

from __future__ import annotations

import functools
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import typing
from dataclasses import dataclass

import anyio
import anyio.abc
import httpx
import pytest
import trio.testing

from durio.actors.runtime import RuntimeConfig
from durio.backend import running_on_trio
from durio.testing import VirtualTimeLoop
from durio.server import RunningServer, run_server

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOUR_APP = ROOT / "examples" / "tour" / "app.py"
TEST_APPS = pathlib.Path(__file__).resolve().parent / "apps"


@dataclass
class InProcessServer:
    running: RunningServer
    ingress: httpx.AsyncClient
    admin: httpx.AsyncClient

    @property
    def runtime(self) -> typing.Any:
        return self.running.runtime


# ---------------------------------------------------------------- backends
# Every async test runs through AnyIO's plugin (anyio_mode = "auto"), once per backend that
# DURIO_TEST_BACKENDS names (default: trio). A test that takes a fixture named `*_clock` whose value is a
# trio.testing.MockClock (`autojump_clock` below, or a file's own) runs on virtual time, as pytest-trio
# ran such tests: on Trio with that clock, on asyncio on durio.testing.VirtualTimeLoop with the clock's
# autojump threshold; uvloop has no virtual time, so such a test is left out of a uvloop run.


def _test_backends() -> list[str]:
    names = [name.strip() for name in os.environ.get("DURIO_TEST_BACKENDS", "trio").split(",") if name.strip()]
    unknown = set(names) - {"trio", "asyncio", "uvloop"}
    if unknown:
        raise pytest.UsageError(f"DURIO_TEST_BACKENDS: unknown backend(s) {sorted(unknown)}; use trio, asyncio, uvloop")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyio_backend" not in metafunc.fixturenames:
        return
    backends = _test_backends()
    if any(name.endswith("_clock") for name in metafunc.fixturenames):
        backends = [name for name in backends if name != "uvloop"]
    metafunc.parametrize("anyio_backend", backends, indirect=True)


# ---------------------------------------------------------------- the quick tier
# `pytest -m "not slow"` runs what needs no server: tests/unit and the other tests of pure logic, in seconds.
# A test is slow when it starts a real server, in this process (it takes the `nursery` that start_in_process
# runs servers in) or as a process (`server_process`), or when its file is one of these:
SLOW_FILES = {
    "tests/conformance/": "Restate's SDK test suite, against durio remote and embedded",
    "tests/test_soak.py": "a soak: kill -9 in a loop, and a disk that fills",
    "tests/test_schedule_soak.py": "a soak of schedules across restarts",
    "tests/test_hostile_input.py": "thousands of generated requests against running servers",
    "tests/test_ui_browser.py": "Chromium",
    "tests/test_ui_schedules_browser.py": "Chromium",
    "tests/test_ui_operate.py": "Chromium",
    "tests/test_bidi_stream.py": "remote deployments as hypercorn processes",
    "tests/test_remote_official_sdk.py": "the official SDK's deployments as processes",
    "tests/test_remote_restate_server.py": "the official Restate server",
    "tests/test_asgi_servers.py": "durio.app under ASGI servers as processes",
    "tests/test_sdk_asyncio_worker.py": "deployments as processes",
    "tests/test_sdk_lazy_state.py": "deployments as processes and the official Restate server",
    "tests/test_signals.py": "deployments as processes and the official Restate server",
    "tests/test_request_identity.py": "the official Restate server and durio server processes",
    "tests/test_sdk_behaviour.py": "the same behaviour through the official Restate server",
    "tests/test_tour_crashes.py": "kill -9 of server processes",
    "tests/test_crash_recovery.py": "kill -9 of server processes",
    "tests/test_cancel_replay.py": "kill -9 of server processes",
    "tests/test_storage_faults.py": "crashes injected at every storage step of running servers",
    "tests/test_fault_matrix.py": "crashes injected at every step of running servers",
    "tests/test_admin_cli.py": "the durio command against server processes",
    "tests/test_asyncio_handlers.py": "server processes on asyncio",
    "tests/test_workers.py": "worker processes under a supervising parent, killed and restarted",
    "tests/test_cluster.py": "a real PostgreSQL server and cluster nodes",
    "tests/test_cluster_nodes.py": "several cluster nodes as processes on a real PostgreSQL",
    "tests/test_listen_addresses.py": "durio serve processes on real addresses",
    "tests/test_sdk_harness.py": "the official harness's suite, in a pytest process of its own",
    "examples/testing/": "a runtime crashed at every step",
}
SERVER_FIXTURES = {"nursery", "server_process"}


def _mark_slow(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.relative_to(ROOT).as_posix() if item.path.is_relative_to(ROOT) else str(item.path)
        if any(path.startswith(slow) for slow in SLOW_FILES) or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)  # the marks must exist before `-m` deselects by them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _mark_slow(items)
    # A test with no backend to run on (a virtual clock in a uvloop-only run) is deselected, not skipped.
    # DURIO_TEST_SUBSET=N keeps the first N tests of each file (a file opens with its core cases): make test's
    # second pass, on asyncio, covers every file without doubling the suite's time.
    per_file = int(os.environ.get("DURIO_TEST_SUBSET") or 0)
    kept, dropped = [], []
    taken: dict[str, int] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("anyio_backend") if callspec is not None else None
        no_backend = "anyio_backend" in getattr(item, "fixturenames", ()) and backend not in ("trio", "asyncio", "uvloop")
        beyond_subset = False
        if per_file and not no_backend:
            taken[item.nodeid.split("::")[0]] = count = taken.get(item.nodeid.split("::")[0], 0) + 1
            beyond_subset = count > per_file
        (dropped if no_backend or beyond_subset else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> typing.Any:
    """A fresh event loop per test; on virtual time when the test takes a `*_clock` fixture (see above)."""
    name = request.param
    if name == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    clocks = [request.getfixturevalue(fixture) for fixture in request.fixturenames if fixture.endswith("_clock")]
    clock = next((value for value in clocks if isinstance(value, trio.testing.MockClock)), None)
    if clock is None:
        return name
    if name == "trio":
        return ("trio", {"clock": clock})
    return ("asyncio", {"loop_factory": functools.partial(VirtualTimeLoop, autojump_threshold=clock.autojump_threshold)})


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps to the next deadline whenever every task waits (on asyncio: VirtualTimeLoop's)."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
async def nursery() -> typing.AsyncIterator[anyio.abc.TaskGroup]:
    """A task group that lives as long as the test, cancelled when it ends (as pytest-trio's `nursery`).

    AnyIO's plugin runs fixtures and the test in one task, so a task group entered here would hold that task
    in its cancel scope: a test or fixture cancelling it (to stop a server) would cancel the runner itself.
    The group is therefore hosted by a task of its own, and cancelling it ends only that task's children.
    """
    done = anyio.Event()

    async def host(*, task_status: anyio.abc.TaskStatus[anyio.abc.TaskGroup]) -> None:
        async with anyio.create_task_group() as task_group:
            task_status.started(task_group)
            await done.wait()
            task_group.cancel_scope.cancel()

    async with anyio.create_task_group() as outer:
        yield await outer.start(host)
        done.set()


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "data"


async def start_in_process(
    nursery: anyio.abc.TaskGroup, services: list, data_dir: pathlib.Path, **config: typing.Any
) -> InProcessServer:
    """Run durio with `services` on loopback ports inside the test's event loop."""
    runtime_config = RuntimeConfig(**config)
    running: RunningServer = await nursery.start(
        lambda task_status: run_server(
            services,
            data_dir=data_dir,
            ingress="127.0.0.1:0",
            admin="127.0.0.1:0",
            config=runtime_config,
            task_status=task_status,
        )
    )
    timeout = httpx.Timeout(30.0)
    return InProcessServer(
        running,
        httpx.AsyncClient(base_url=running.ingress_url, timeout=timeout),
        httpx.AsyncClient(base_url=running.admin_url, timeout=timeout),
    )


_LISTENING = re.compile(r"durio (ingress|admin) listening on (http://\S+)")


class ServerProcess:
    """`durio serve APP` as a real child process, for kill -9 tests."""

    # Every process started, so that the session can stop those a failed test left running (a supervising
    # parent left running would keep its workers, ports and data directory busy).
    started: typing.ClassVar[list[subprocess.Popen[bytes]]] = []

    def __init__(
        self,
        app: pathlib.Path | str | None,
        data_dir: pathlib.Path,
        log_path: pathlib.Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.app = str(app) if app is not None else ""
        self.args = list(args or [])  # more flags, e.g. ["--backend", "asyncio"]
        # Unless the test chose one, the server runs on the test's own backend (see start).
        self.backend_chosen = "DURIO_BACKEND" in (env or {}) or "--backend" in self.args
        self.ingress_bind = "127.0.0.1:0"  # set a fixed port to keep the address across restarts
        self.admin_bind = "127.0.0.1:0"
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.ingress_url = ""
        self.admin_url = ""
        self._log_offset = 0

    async def start(self, timeout: float = 30.0) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        command = ["serve", self.app] if self.app else ["server"]
        env = self.env
        if not self.backend_chosen:
            env = {**env, "DURIO_BACKEND": "trio" if running_on_trio() else "asyncio"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durio.cli",
                *command,
                "--data-dir",
                str(self.data_dir),
                "--ingress",
                self.ingress_bind,
                "--admin",
                self.admin_bind,
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(ROOT),
        )
        ServerProcess.started.append(self.process)
        log.close()
        deadline = time.monotonic() + timeout
        urls: dict[str, str] = {}
        while len(urls) < 2:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.new_output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start:\n{self.new_output()}")
            for kind, url in _LISTENING.findall(self.new_output()):
                urls[kind] = url
            await anyio.sleep(0.05)
        self.ingress_url, self.admin_url = urls["ingress"], urls["admin"]

    def new_output(self) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def client(self, admin: bool = False) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.admin_url if admin else self.ingress_url, timeout=httpx.Timeout(60.0))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_process(tmp_path: pathlib.Path) -> typing.Iterator[typing.Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(
        app: pathlib.Path | str | None, env: dict[str, str] | None = None, name: str = "server", args: list[str] | None = None
    ) -> ServerProcess:
        process = ServerProcess(app, tmp_path / f"{name}-data", tmp_path / f"{name}.log", env, args)
        started.append(process)
        return process

    yield make
    for process in started:
        if process.process is not None and process.process.poll() is None:
            process.kill9()


async def wait_until(
    predicate: typing.Callable[[], typing.Awaitable[bool]], timeout: float = 20.0, interval: float = 0.05
) -> None:
    """Poll an async predicate (for observing a real server from outside, not for ordering tasks)."""
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(interval)


async def invoke(
    runtime: typing.Any,
    service: str,
    handler: str,
    body: typing.Any = None,
    key: str | None = None,
    send: bool = False,
    delay_ms: int = 0,
) -> typing.Any:
    """Call a handler through the runtime itself, with no HTTP in between (for tests on a virtual clock)."""
    import json as _json

    from durio.journal.entries import Failure, Target

    target = Target(service, handler, key)
    definition = runtime.registry.handler_for(target)
    assert definition is not None, f"no handler {target}"
    payload = b"" if body is None else _json.dumps(body).encode()
    record, input_entry = runtime.new_invocation(target, definition, payload, [], None, delay_ms)
    if send:
        created, _ = await runtime.send(record, input_entry)
        return created.id
    _, result = await runtime.call(record, input_entry)
    if isinstance(result, Failure):
        return result
    return _json.loads(result) if result else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for process in ServerProcess.started:
        if process.poll() is None:
            process.kill()
            process.wait()
