"""`durio.app(services)` under the ASGI servers people run it with: hypercorn's asyncio and uvloop workers and
uvicorn (on uvloop). The app and its handlers run on the server's own loop (durio is AnyIO code); each serves
the tour, registered with a durio server and with the official Restate server, with the same results as
the tour embedded (tests/test_remote_restate_server.py)."""

from __future__ import annotations

import pathlib
import signal
import sys

import pytest

from tests.conftest import free_port
from tests.remote_peers import Peer, RestateServer
from tests.test_remote_restate_server import EXPECTED, comparable, run_the_tour

APP = "tests.apps.tour_asgi:app"

SERVERS = {
    "hypercorn-asyncio": lambda port: [
        sys.executable,
        "-m",
        "hypercorn",
        APP,
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "asyncio",
    ],
    "hypercorn-uvloop": lambda port: [
        sys.executable,
        "-m",
        "hypercorn",
        APP,
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "uvloop",
    ],
    "uvicorn": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        APP,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--no-access-log",
    ],
}


def asgi_endpoint(kind: str, tmp_path: pathlib.Path) -> Peer:
    port = free_port()
    return Peer(SERVERS[kind](port), tmp_path / f"{kind}.log", port)


@pytest.mark.parametrize("kind", sorted(SERVERS))
async def test_the_tour_served_by_an_asgi_server_on_a_durio_server(kind, server_process, tmp_path) -> None:
    endpoint = asgi_endpoint(kind, tmp_path)
    await endpoint.start()
    try:
        server = server_process(None)
        await server.start()
        async with server.client(admin=True) as admin:
            assert (await admin.post("/deployments", json={"uri": endpoint.url})).status_code == 201
        assert comparable(await run_the_tour(server.ingress_url, endpoint.output)) == EXPECTED
        removed = [line for line in endpoint.output().splitlines() if line.startswith(">>> Removed subscription")]
        assert [line.split(" for ")[0] for line in removed][:3] == [
            ">>> Removed subscription Disney",
            ">>> Removed subscription Prime",
            ">>> Removed subscription Hulu",
        ]
        assert server.terminate() == 0
        # A graceful stop: the server's lifespan shutdown ends the app cleanly. (uvicorn, once shut down,
        # raises the signal again for its own exit status.)
        assert endpoint.process is not None
        endpoint.process.send_signal(signal.SIGTERM)
        expected = -signal.SIGTERM if kind == "uvicorn" else 0
        assert endpoint.process.wait(timeout=30) == expected, endpoint.output()
        if kind == "uvicorn":
            assert "Application shutdown complete" in endpoint.output()
    finally:
        endpoint.stop()
    assert "Traceback" not in endpoint.output()


@pytest.mark.parametrize("kind", ["hypercorn-asyncio", "uvicorn"])
async def test_the_tour_served_by_an_asgi_server_on_the_official_restate_server(kind, tmp_path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    endpoint = asgi_endpoint(kind, tmp_path)
    try:
        await restate.start(ready_path="/health")
        await endpoint.start()
        registered = await restate.register(endpoint.url)
        assert {s["name"] for s in registered["services"]} >= {"SubscriptionService", "UserSubscriptions", "SignupWorkflow"}
        assert comparable(await run_the_tour(restate.ingress_url, endpoint.output)) == EXPECTED
        removed = [line for line in endpoint.output().splitlines() if line.startswith(">>> Removed subscription")]
        assert removed == [f">>> Removed subscription {s} for user user-123" for s in ("Disney", "Prime", "Hulu")]
    finally:
        endpoint.stop()
        restate.stop()
