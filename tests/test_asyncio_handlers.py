"""Handlers written for asyncio (tests/apps/asyncio_app.py) under `durio serve --backend asyncio`, and under Trio.

On asyncio they run as they would on the official SDK: asyncio.sleep, gather, wait_for, TaskGroup, wait,
contextvars and aiohttp inside run steps, each step exactly once across a kill -9. On Trio (the default)
the same handlers fail their attempts with a message that says to run on asyncio, and the server goes on.
"""

from __future__ import annotations

import collections
import http.server
import json
import os
import subprocess
import sys
import threading
import typing

import pytest

from tests.conftest import ROOT, TEST_APPS, ServerProcess, wait_until

ASYNCIO_APP = TEST_APPS / "asyncio_app.py"


class Ledger:
    """A loopback HTTP server counting effects (POST /effect {"name"}) and holding gates (GET /gate/NAME)."""

    def __init__(self) -> None:
        self.effects: collections.Counter[str] = collections.Counter()
        self.open_gates: set[str] = set()
        self.gate_polls: collections.Counter[str] = collections.Counter()
        ledger = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                ledger.effects[body["name"]] += 1
                self._answer(str(ledger.effects[body["name"]]))

            def do_GET(self) -> None:
                gate = self.path.rsplit("/", 1)[1]
                ledger.gate_polls[gate] += 1
                self._answer("open" if gate in ledger.open_gates else "closed")

            def _answer(self, text: str) -> None:
                data = text.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: typing.Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def ledger() -> typing.Iterator[Ledger]:
    ledger = Ledger()
    yield ledger
    ledger.close()


async def call(server: ServerProcess, handler: str, body: typing.Any, service: str = "AsyncioShop") -> typing.Any:
    async with server.client() as client:
        response = await client.post(f"/restate/call/{service}/{handler}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_asyncio_handlers_run_under_backend_asyncio_and_each_step_once_across_kill_9(server_process, ledger) -> None:
    server = server_process(ASYNCIO_APP, env={"LEDGER_URL": ledger.url}, args=["--backend", "asyncio"])
    await server.start()
    assert "durio runs on asyncio" in server.output()

    assert await call(server, "nap", 20) == "slept 20 ms"
    assert await call(server, "gathered", ["x", "y", "z"]) == ["x", "y", "z"]
    assert await call(server, "race", None) == "timed out"
    assert await call(server, "grouped", ["p", "q"]) == ["P", "Q"]
    assert await call(server, "first_of", None) == ["quick"]

    async with server.client() as client:
        sent = await client.post("/restate/send/AsyncioShop/checkout", json={"order": "o-1"})
    assert sent.status_code == 202, sent.text
    invocation_id = sent.json()["invocationId"]

    async def waiting_at_the_gate() -> bool:
        return ledger.gate_polls["o-1"] > 0

    await wait_until(waiting_at_the_gate)
    assert ledger.effects == {"charge o-1": 1, "reserve o-1 a": 1, "reserve o-1 b": 1}
    server.kill9()

    await server.start()
    ledger.open_gates.add("o-1")
    async with server.client() as client:
        attached = await client.get(f"/restate/attach/{invocation_id}")
        assert attached.status_code == 200, attached.text
        assert attached.json() == {"charged": "1", "reserved": ["A", "B"], "gate": "through", "tag": "o-1"}
        async with server.client(admin=True) as admin:
            journal = (await admin.get(f"/invocations/{invocation_id}")).json()["journal"]
    # The steps ran once each, the server's restart notwithstanding (the gate ran again: it was not journaled).
    assert ledger.effects == {"charge o-1": 1, "reserve o-1 a": 1, "reserve o-1 b": 1}
    # The two gathered steps are journaled in the order they were made, as the official SDK journals them.
    runs = [entry["name"] for entry in journal if entry["type"] == "run"]
    assert runs == ["charge", "reserve a", "reserve b", "gate"]
    assert server.terminate() == 0


@pytest.mark.parametrize("handler, body", [("nap", 10), ("gathered", ["x", "y"]), ("checkout", {"order": "o-2"})])
async def test_the_same_handlers_under_trio_fail_saying_to_run_on_asyncio(server_process, ledger, handler, body) -> None:
    server = server_process(ASYNCIO_APP, env={"LEDGER_URL": ledger.url, "DURIO_BACKEND": ""})  # the default backend: trio
    await server.start()
    assert "durio runs on trio" in server.output()
    async with server.client() as client:
        sent = await client.post(f"/restate/send/AsyncioShop/{handler}", json=body)
    assert sent.status_code == 202, sent.text
    invocation_id = sent.json()["invocationId"]

    async with server.client(admin=True) as admin:

        async def failed_twice() -> bool:
            view = (await admin.get(f"/invocations/{invocation_id}")).json()
            return view["retry_count"] >= 2

        await wait_until(failed_twice)
        view = (await admin.get(f"/invocations/{invocation_id}")).json()
    message = view["last_failure"]["message"]
    assert message.startswith("WrongEventLoop: this handler uses asyncio, but durio runs it on Trio"), message
    assert "durio serve --backend asyncio" in message
    assert view["status"] in ("backing-off", "running")
    assert not ledger.effects, "nothing reached the ledger"

    # The server stays up and serves what does not need asyncio.
    assert await call(server, "hello", "ada", service="PlainTrioSafe") == "hello ada"
    assert server.process is not None and server.process.poll() is None
    assert server.terminate() == 0


async def test_backend_uvloop_runs_the_asyncio_handlers(server_process, ledger) -> None:
    server = server_process(ASYNCIO_APP, env={"LEDGER_URL": ledger.url, "DURIO_BACKEND": "uvloop"})
    await server.start()
    assert "durio runs on uvloop" in server.output()
    assert await call(server, "nap", 5) == "slept 5 ms"
    assert await call(server, "gathered", ["u", "v"]) == ["u", "v"]
    ledger.open_gates.add("o-3")
    assert await call(server, "checkout", {"order": "o-3"}) == {
        "charged": "1",
        "reserved": ["A", "B"],
        "gate": "through",
        "tag": "o-3",
    }
    assert ledger.effects == {"charge o-3": 1, "reserve o-3 a": 1, "reserve o-3 b": 1}
    assert server.terminate() == 0


def test_an_unknown_backend_is_refused_before_anything_starts(tmp_path) -> None:
    data_dir = tmp_path / "data"
    flag = subprocess.run(
        [sys.executable, "-m", "durio.cli", "server", "--data-dir", str(data_dir), "--backend", "curio"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert flag.returncode == 2 and "invalid choice: 'curio'" in flag.stderr
    env_var = subprocess.run(
        [sys.executable, "-m", "durio.cli", "server", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "DURIO_BACKEND": "curio"},
    )
    assert env_var.returncode == 1
    assert "DURIO_BACKEND: 'curio' is not a backend; choose one of trio, asyncio, uvloop" in env_var.stderr
    assert not data_dir.exists(), "nothing was created"


@pytest.mark.parametrize("worker", ["asyncio", "trio"])
async def test_the_handlers_as_a_deployment_follow_the_asgi_servers_loop(worker, server_process, ledger, tmp_path) -> None:
    """durio.app runs on the ASGI server's loop: hypercorn's asyncio worker runs the asyncio handlers (gather
    over run steps included, in request/response mode), its trio worker fails them saying to serve on asyncio."""
    from tests.remote_peers import hypercorn_deployment

    endpoint = hypercorn_deployment(
        "tests.apps.asyncio_app:app", tmp_path / "endpoint.log", {"LEDGER_URL": ledger.url}, trio_worker=worker == "trio"
    )
    await endpoint.start(ready_path="/health")
    try:
        server = server_process(None)
        await server.start()
        async with server.client(admin=True) as admin:
            assert (await admin.post("/deployments", json={"uri": endpoint.url})).status_code == 201
        if worker == "asyncio":
            ledger.open_gates.add("o-4")
            assert await call(server, "checkout", {"order": "o-4"}) == {
                "charged": "1",
                "reserved": ["A", "B"],
                "gate": "through",
                "tag": "o-4",
            }
            assert await call(server, "gathered", ["r", "s"]) == ["r", "s"]
            assert ledger.effects == {"charge o-4": 1, "reserve o-4 a": 1, "reserve o-4 b": 1}
        else:
            async with server.client() as client:
                sent = await client.post("/restate/send/AsyncioShop/gathered", json=["r", "s"])
            invocation_id = sent.json()["invocationId"]
            async with server.client(admin=True) as admin:

                async def failed() -> bool:
                    return (await admin.get(f"/invocations/{invocation_id}")).json()["retry_count"] >= 1

                await wait_until(failed)
                message = (await admin.get(f"/invocations/{invocation_id}")).json()["last_failure"]["message"]
            assert "WrongEventLoop" in message and "an asyncio server" in message, message
            assert await call(server, "hello", "ada", service="PlainTrioSafe") == "hello ada"
        assert server.terminate() == 0
    finally:
        endpoint.stop()
