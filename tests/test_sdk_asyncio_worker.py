"""`durio.app` served the way the official SDK's docs serve `app`: `hypercorn module:app` with its default
asyncio worker (the app and its handlers run on the asyncio loop: durio is AnyIO code), registered with a
durio server and with the official Restate server."""

from __future__ import annotations

import pathlib
import signal
import typing

from tests.remote_peers import RestateServer, hypercorn_deployment
from tests.test_sdk_client import calls_and_sends_to_every_kind_of_handler
from tests.test_sdk_lazy_state import AFTER_CHURN, churn_everything


def asyncio_deployment(app: str, tmp_path: pathlib.Path, env: dict[str, str] | None = None) -> typing.Any:
    return hypercorn_deployment(app, tmp_path / (app.replace(":", "_") + ".log"), env)  # no --worker-class: asyncio


async def test_durio_app_under_hypercorns_asyncio_worker_on_a_durio_server(
    server_process: typing.Any, tmp_path: pathlib.Path
) -> None:
    client_app = asyncio_deployment("tests.apps.sdk_client_app:app", tmp_path)
    lazy_app = asyncio_deployment("tests.apps.lazy_state_app:app", tmp_path)
    await client_app.start(ready_path="/health")
    await lazy_app.start(ready_path="/health")
    try:
        server = server_process(None)
        await server.start()
        async with server.client(admin=True) as admin:
            for peer in (client_app, lazy_app):
                registered = await admin.post("/deployments", json={"uri": peer.url})
                assert registered.status_code == 201, registered.text
        await calls_and_sends_to_every_kind_of_handler(server.ingress_url)
        assert await churn_everything(server.ingress_url) == {
            name: AFTER_CHURN for name in ("LazyState", "NotPreloaded", "EagerState")
        }
        assert server.terminate() == 0
        # A graceful stop: the lifespan's shutdown ends the app cleanly.
        for peer in (client_app, lazy_app):
            peer.process.send_signal(signal.SIGTERM)
            assert peer.process.wait(timeout=30) == 0, peer.output()
    finally:
        client_app.stop()
        lazy_app.stop()
    assert "Traceback" not in client_app.output() + lazy_app.output()


async def test_durio_app_under_hypercorns_asyncio_worker_on_the_official_restate_server(tmp_path: pathlib.Path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    peer = asyncio_deployment("tests.apps.sdk_client_app:app", tmp_path)
    try:
        await restate.start(ready_path="/health")
        await peer.start(ready_path="/health")
        await restate.register(peer.url)
        await calls_and_sends_to_every_kind_of_handler(restate.ingress_url)
    finally:
        peer.stop()
        restate.stop()
