"""Running durio: the embedded server (services in-process) and its HTTP listeners."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import typing
from dataclasses import dataclass

import trio

from durio.actors.runtime import Runtime, RuntimeConfig, open_runtime
from durio.ingress.admin_app import AdminApp
from durio.ingress.ingress_app import IngressApp
from durio.ingress.serving import serve_http
from durio.ingress.ui import admin_routes
from durio.sdk.definitions import ServiceDefinition

log = logging.getLogger("durio")

DEFAULT_DATA_DIR = "./.durio"
DEFAULT_INGRESS = "127.0.0.1:8080"
DEFAULT_ADMIN = "127.0.0.1:9070"


@dataclass
class RunningServer:
    runtime: Runtime
    ingress_url: str
    admin_url: str


async def run_server(
    services: typing.Iterable[ServiceDefinition],
    *,
    data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR,
    ingress: str = DEFAULT_INGRESS,
    admin: str = DEFAULT_ADMIN,
    config: RuntimeConfig | None = None,
    task_status: trio.TaskStatus[RunningServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the runtime and both HTTP listeners until cancelled."""
    async with open_runtime(services, data_dir, config) as runtime:
        async with trio.open_nursery() as nursery:
            ingress_url = await nursery.start(serve_http, IngressApp(runtime), ingress)
            admin_url = await nursery.start(serve_http, AdminApp(runtime, admin_routes(runtime)), admin)
            log.info("durio ingress listening on %s", ingress_url)
            log.info("durio admin listening on %s (UI at %s/ui/)", admin_url, admin_url)
            task_status.started(RunningServer(runtime, ingress_url, admin_url))


async def run_until_signalled(services: typing.Iterable[ServiceDefinition], **options: typing.Any) -> None:
    """Run the server; SIGINT or SIGTERM shut it down cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_server(services, task_status=task_status, **options))

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("received %s, shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)


def serve(
    services: typing.Iterable[ServiceDefinition],
    data_dir: str | None = None,
    ingress: str | None = None,
    admin: str | None = None,
    config: RuntimeConfig | None = None,
) -> None:
    """Run durio embedded, with these services in-process, until SIGINT/SIGTERM."""
    options = {
        "data_dir": data_dir or os.environ.get("DURIO_DATA_DIR") or DEFAULT_DATA_DIR,
        "ingress": ingress or os.environ.get("DURIO_INGRESS") or DEFAULT_INGRESS,
        "admin": admin or os.environ.get("DURIO_ADMIN") or DEFAULT_ADMIN,
        "config": config,
    }
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(lambda: run_until_signalled(list(services), **options))


def app(services: typing.Iterable[ServiceDefinition]) -> typing.Any:
    """An ASGI app serving these services as a remote deployment (Restate's service protocol)."""
    from durio.protocol.endpoint import EndpointApp  # noqa: PLC0415 (the protocol stack loads on demand)

    return EndpointApp(list(services))
