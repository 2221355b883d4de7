"""Restate's SDK test suite, ported: one set of services (services.py), run three ways.

- remote: services.py on the official restate-sdk, served by hypercorn, registered with `durio server`;
- embedded: the same file on `durio serve` with `restate` bound to durio (durio.install_as_restate());
- restate: the remote deployment on the official Restate server (`make conformance-restate`), to show
  that a test asks for what Restate does.

DURIO_CONFORMANCE_TARGETS picks them (default `remote,embedded,remote-default,embedded-default`). Each target is one server per test
run of this package (stopped before the rest of `make test`), shared by every test class (the suite's own tests use fresh keys, so they do not interfere),
each in the suite's two configurations: always suspending (its "alwaysSuspending": an inactivity
timeout of 0s makes every wait suspend and replay the journal) and, with the `-default` suffix
(`remote-default`, `embedded-default`, `restate-default`), the server's defaults. NonDeterminismErrors gets its own server with the
retry policy it configures. KillRuntime/StopRuntime kill -9 or SIGTERM the real server process and
start it again on the same data dir and ports.

Markers (listed in the README, reported in their own section of the summary):
- `not_applicable(modes, reason)`: the test cannot apply in these modes; it is not run and is reported
  as NOT APPLICABLE with its reason, never counted as passing;
- `durio_gap(modes, reason)`: durio does not yet do what the test asks in these modes: a strict xfail,
  so the test runs, and turns into a failure the day durio does it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.remote_peers import restate_server_binary

MODES = ("remote", "embedded", "restate")
# A mode with this suffix runs with the server's default inactivity timeout instead of always suspending.
DEFAULT_CONFIG = "-default"
# The suite's "alwaysSuspending" configuration, in Restate's own environment variables (durio reads them too).
ALWAYS_SUSPENDING = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "0s"}
_not_applicable: list[tuple[str, str]] = []


def selected_modes() -> list[str]:
    chosen = os.environ.get("DURIO_CONFORMANCE_TARGETS", "remote,embedded,remote-default,embedded-default")
    modes = [m.strip() for m in chosen.split(",") if m.strip()]
    unknown = {m for m in modes if base_mode(m) not in MODES}
    if unknown:
        raise pytest.UsageError(
            f"DURIO_CONFORMANCE_TARGETS: unknown {sorted(unknown)}; choose from {MODES}, "
            f"each optionally with {DEFAULT_CONFIG} (default configuration, not always suspending)"
        )
    return modes


def base_mode(mode: str) -> str:
    return mode.removesuffix(DEFAULT_CONFIG)


def always_suspending(mode: str) -> bool:
    return not mode.endswith(DEFAULT_CONFIG)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "not_applicable(modes, reason): the conformance test cannot apply in these modes")
    config.addinivalue_line("markers", "durio_gap(modes, reason): durio does not yet pass this conformance test in these modes")
    config.addinivalue_line("markers", "only_always_suspending: the suite runs this test only always suspending")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", selected_modes(), scope="package")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        mode = getattr(getattr(item, "callspec", None), "params", {}).get("mode")
        if mode is None:
            continue
        reasons = [marker.args[1] for marker in item.iter_markers("not_applicable") if base_mode(mode) in marker.args[0]]
        if not always_suspending(mode) and item.get_closest_marker("only_always_suspending"):
            reasons.append("the suite runs it only in its always-suspending configuration")
        for why in reasons[:1]:
            reason = f"NOT APPLICABLE in {mode} mode: {why}"
            _not_applicable.append((item.nodeid, reason))
            item.add_marker(pytest.mark.skip(reason=reason))
        for marker in item.iter_markers("durio_gap"):
            if mode in marker.args[0] and base_mode(mode) != "restate":
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"durio gap in {mode} mode: {marker.args[1]}"))


def pytest_deselected(items: list[pytest.Item]) -> None:
    # A test deselected (by -m "not slow", say) was not skipped as not applicable either: it was not in the run.
    deselected = {item.nodeid for item in items}
    _not_applicable[:] = [(nodeid, reason) for nodeid, reason in _not_applicable if nodeid not in deselected]


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if _not_applicable:
        terminalreporter.section("conformance: not applicable (not run, not counted as passing)")
        for nodeid, reason in _not_applicable:
            terminalreporter.write_line(f"{nodeid}: {reason}")


# ---------------------------------------------------------------- processes


def _wait_http(url: str, process: subprocess.Popen[bytes], log: pathlib.Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)


class Process:
    """A child process in its own process group, started again on demand with the same command."""

    def __init__(self, command: list[str], log: pathlib.Path, ready_url: str, env: dict[str, str] | None = None) -> None:
        self.command = command
        self.log = log
        self.ready_url = ready_url
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True
            )
        _wait_http(self.ready_url, self.process, self.log)

    def kill9(self) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill9()
            return -9

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill9()


class Target:
    """A server the tests talk to: its ingress and admin URLs, and its process to kill or stop."""

    def __init__(self, mode: str, server: Process, ingress_url: str, admin_url: str) -> None:
        self.mode = mode
        self.server = server
        self.ingress_url = ingress_url
        self.admin_url = admin_url

    def kill_and_restart(self) -> None:
        self.server.kill9()
        self.server.start()

    def terminate_and_restart(self) -> int:
        code = self.server.terminate()
        self.server.start()
        return code

    def register(self, deployment_url: str) -> None:
        body: dict[str, typing.Any] = {"uri": deployment_url}
        if self.mode == "restate":
            body["use_http_11"] = True
        response = httpx.post(self.admin_url + "/deployments", json=body, timeout=60)
        assert response.status_code in (200, 201), response.text
        if self.mode == "remote":
            # Registered without flags, a durio server talks to the official SDK over HTTP/2, one stream per attempt.
            assert (response.json()["protocol_type"], response.json()["http_version"]) == ("BidiStream", "HTTP/2.0"), (
                response.text
            )


def _durio(mode: str, base: pathlib.Path, env: dict[str, str]) -> Target:
    ingress, admin = free_port(), free_port()
    app = ["serve", "tests/conformance/embedded_app.py"] if mode == "embedded" else ["server"]
    command = [
        sys.executable,
        "-m",
        "durio.cli",
        *app,
        "--data-dir",
        str(base / "data"),
        "--ingress",
        f"127.0.0.1:{ingress}",
        "--admin",
        f"127.0.0.1:{admin}",
    ]
    server = Process(command, base / "durio.log", f"http://127.0.0.1:{admin}/health", {"DURIO_WORKERS": "1", **env})
    server.start()
    return Target(mode, server, f"http://127.0.0.1:{ingress}", f"http://127.0.0.1:{admin}")


def _restate(base: pathlib.Path, env: dict[str, str]) -> Target:
    ingress, admin, node = free_port(), free_port(), free_port()
    server_env = {
        "RESTATE_DISABLE_TELEMETRY": "true",
        "RESTATE_LISTEN_MODE": "tcp",
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{node}",
        "RESTATE_DEFAULT_NUM_PARTITIONS": "2",
        **env,
    }
    server = Process(
        [restate_server_binary(), "--base-dir", str(base / "data"), "--no-logo"],
        base / "restate.log",
        f"http://127.0.0.1:{admin}/health",
        server_env,
    )
    server.start()
    _wait_http(f"http://127.0.0.1:{ingress}/restate/health", server.process, server.log)  # type: ignore[arg-type]
    return Target("restate", server, f"http://127.0.0.1:{ingress}", f"http://127.0.0.1:{admin}")


def deployment_url(process: Process) -> str:
    return process.ready_url.removesuffix("/health")


class Targets:
    """The package's servers, made when first asked for and stopped when its tests are done."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.processes: list[Process] = []
        self._deployments: dict[str, Process] = {}
        self._targets: dict[tuple[str, str], Target] = {}

    def deployment(self, name: str = "sdk", env: dict[str, str] | None = None) -> Process:
        """An official-SDK deployment serving services.py (the default one serves every remote target)."""
        if name not in self._deployments:
            port = free_port()
            peer = Process(
                [sys.executable, "-m", "hypercorn", "tests.conformance.remote_app:app", "--bind", f"127.0.0.1:{port}"],
                self.base / f"{name}.log",
                f"http://127.0.0.1:{port}/health",
                env,
            )
            self.processes.append(peer)
            peer.start()
            self._deployments[name] = peer
        return self._deployments[name]

    def get(
        self, mode: str, name: str = "default", env: dict[str, str] | None = None, deployment: Process | None = None
    ) -> Target:
        if (mode, name) not in self._targets:
            base = self.base / f"{mode}-{name}"
            base.mkdir()
            env = {**(ALWAYS_SUSPENDING if always_suspending(mode) else {}), **(env or {})}
            kind = base_mode(mode)
            target = _restate(base, env) if kind == "restate" else _durio(kind, base, env)
            self.processes.append(target.server)
            if kind != "embedded":
                target.register(deployment_url(deployment or self.deployment()))
            self._targets[mode, name] = target
        return self._targets[mode, name]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture(scope="package")
def targets() -> typing.Iterator[Targets]:
    base = pathlib.Path(tempfile.mkdtemp(prefix="durio-conformance-"))
    made = Targets(base)
    try:
        yield made
    finally:
        made.stop()
        if not os.environ.get("DURIO_CONFORMANCE_KEEP"):  # set it to keep the servers' logs
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="package")
def target(targets: Targets, mode: str) -> Target:
    return targets.get(mode)


@pytest.fixture
async def ingress(target: Target) -> typing.AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.ingress_url, timeout=httpx.Timeout(60.0)) as client:
        yield client


@pytest.fixture
async def admin(target: Target) -> typing.AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.admin_url, timeout=httpx.Timeout(60.0)) as client:
        yield client
