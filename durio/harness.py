"""The official SDK's test harness (`test_harness`, `create_test_harness`), backed by an embedded durio.

The SDK's harness serves the app with hypercorn and starts a Restate server in Docker to register it
with. Here the app's services run inside an embedded durio (a temporary LMDB directory, ingress and
admin on loopback ports): no Docker, no network, a start in milliseconds. Tests written for the
official harness run unchanged; `restate_image` names a container this harness never starts.

`always_replay=True` suspends every invocation at each await, so it resumes by replaying its journal
(the SDK sets Restate's inactivity timeout to 0 for the same effect); `disable_retries=True` kills an
invocation at its first failure, as the SDK's harness configures Restate to.

The async `create_test_harness` runs durio in the caller's event loop, Trio or asyncio (the handlers run
there too); the sync `test_harness` (deprecated in the SDK) runs it in a thread of its own, on the
backend DURIO_BACKEND names (durio.backend).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import typing
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.lowlevel

from durio import backend
from durio.actors.runtime import RuntimeConfig
from durio.client import create_client
from durio.entry_codec import JournalValueCodec
from durio.sdk.options import Backoff
from durio.server import RunningServer, run_server, services_of
from durio.types import HarnessEnvironment

DEFAULT_IMAGE = "docker.io/restatedev/restate:latest"


@dataclass
class TestConfiguration:
    __test__ = False  # not a pytest test class, despite the name (the SDK's)

    restate_image: str = "restatedev/restate:latest"
    stream_logs: bool = False
    always_replay: bool = False
    disable_retries: bool = False


def _runtime_config(always_replay: bool, disable_retries: bool) -> RuntimeConfig:
    config = RuntimeConfig()
    if always_replay:
        config.suspend_after_s = 0.0
    if disable_retries:
        config.invocation_backoff = Backoff(max_attempts=1, on_max_attempts="kill")
    return config


@contextlib.contextmanager
def _following_logs(follow: bool) -> typing.Iterator[None]:
    if not follow:
        yield
        return
    handler = logging.StreamHandler()
    logger = logging.getLogger("durio")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


class _ServerThread:
    """An embedded durio with its own event loop in a thread, for callers that have no loop (the sync harness)."""

    def __init__(self, app: typing.Any, config: RuntimeConfig) -> None:
        self.services = services_of(app)
        self.config = config
        self.running: RunningServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._stop: anyio.Event | None = None
        self._thread: threading.Thread | None = None
        self._data = tempfile.TemporaryDirectory(prefix="durio-harness-")

    def start(self) -> RunningServer:
        self._thread = threading.Thread(target=self._run, name="durio-harness", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._data.cleanup()
            raise RuntimeError("the embedded durio did not start") from self._error
        assert self.running is not None
        return self.running

    def _run(self) -> None:
        try:
            backend.run(self._serve, backend=backend.choose_backend())
        except BaseException as exc:  # reported to start(); a thread has nobody else to tell
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._token = anyio.lowlevel.current_token()
        self._stop = anyio.Event()
        async with anyio.create_task_group() as nursery:
            self.running = await nursery.start(
                lambda task_status: run_server(
                    self.services,
                    data_dir=self._data.name,
                    ingress="127.0.0.1:0",
                    admin="127.0.0.1:0",
                    config=self.config,
                    task_status=task_status,
                )
            )
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._token is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended (trio's RunFinishedError is one)
                anyio.from_thread.run_sync(self._stop.set, token=self._token)
        self._thread.join()
        self._thread = None
        self._data.cleanup()


class RestateTestHarness:
    """The SDK's synchronous harness: `start()`, `stop()`, `ingress_client()` (an httpx.Client), `with`."""

    def __init__(self, asgi_app: typing.Any, config: TestConfiguration | None) -> None:
        self.asgi_app = asgi_app
        self.config = config or TestConfiguration()
        self._server: _ServerThread | None = None
        self._logs: contextlib.ExitStack | None = None

    def start(self) -> None:
        self._logs = contextlib.ExitStack()
        self._logs.enter_context(_following_logs(self.config.stream_logs))
        self._server = _ServerThread(self.asgi_app, _runtime_config(self.config.always_replay, self.config.disable_retries))
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._logs is not None:
            self._logs.close()
            self._logs = None

    def _running(self) -> RunningServer:
        if self._server is None or self._server.running is None:
            raise AssertionError("The durio server has not been started. Use .start()")
        return self._server.running

    @property
    def ingress_url(self) -> str:
        return self._running().ingress_url

    @property
    def admin_url(self) -> str:
        return self._running().admin_url

    def ingress_client(self) -> typing.Any:
        import httpx  # noqa: PLC0415 (optional dependency, as for the ingress client)

        return httpx.Client(base_url=self._running().ingress_url)

    def __enter__(self) -> RestateTestHarness:
        self.start()
        return self

    def __exit__(self, *exc_info: typing.Any) -> None:
        self.stop()


def test_harness(
    app: typing.Any,
    follow_logs: bool = False,
    restate_image: str = DEFAULT_IMAGE,
    always_replay: bool = False,
    disable_retries: bool = False,
) -> RestateTestHarness:
    """A harness for `app` (what `durio.app([...])` returned); start it with `with` or `.start()`."""
    return RestateTestHarness(app, TestConfiguration(restate_image, follow_logs, always_replay, disable_retries))


test_harness.__test__ = False  # type: ignore[attr-defined]  # a factory, not a test, despite its name


@contextlib.asynccontextmanager
async def create_test_harness(
    app: typing.Any,
    follow_logs: bool = False,
    restate_image: str = DEFAULT_IMAGE,
    always_replay: bool = False,
    disable_retries: bool = False,
    journal_value_codec: JournalValueCodec | None = None,
) -> typing.AsyncIterator[HarnessEnvironment]:
    """Run `app`'s services in an embedded durio while the block runs; yields its URLs and an ingress client."""
    if journal_value_codec is not None:
        # The client would encode what the embedded handlers then read as it is.
        raise NotImplementedError(
            "durio's harness runs the services embedded, where no journal value codec applies: "
            "test a codec with the app served as a deployment of a durio server"
        )
    config = _runtime_config(always_replay, disable_retries)
    with _following_logs(follow_logs):
        # On the caller's loop, whichever it is: the handlers run there too.
        with tempfile.TemporaryDirectory(prefix="durio-harness-") as data_dir:
            async with anyio.create_task_group() as nursery:
                running: RunningServer = await nursery.start(
                    lambda task_status: run_server(
                        services_of(app),
                        data_dir=data_dir,
                        ingress="127.0.0.1:0",
                        admin="127.0.0.1:0",
                        config=config,
                        task_status=task_status,
                    )
                )
                async with create_client(running.ingress_url, journal_value_codec=journal_value_codec) as client:
                    yield HarnessEnvironment(running.ingress_url, running.admin_url, client)
                nursery.cancel_scope.cancel()


__all__ = ["test_harness", "create_test_harness", "RestateTestHarness", "TestConfiguration", "HarnessEnvironment"]
