"""A journal value codec (`durio.app(..., journal_value_codec=...)`, `create_client(journal_value_codec=...)`):
the deployment and the client encode every value they send and decode what they receive, so the server
(durio's, or Restate's) only ever holds encoded values: input, output, state, run results, calls."""

from __future__ import annotations

import pathlib

import pytest
import anyio
import anyio.abc

import durio
from durio.client import create_client
from tests.apps.codec_app import PREFIX, Sealed, app, keep, reveal
from tests.conftest import start_in_process, wait_until
from tests.remote_peers import RestateServer, hypercorn_deployment

EXPECTED = {"stamped": "[ada]", "loud": "[ADA]", "kept": "[ADA]"}


async def test_a_durio_server_holds_only_encoded_values(
    nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    peer = hypercorn_deployment("tests.apps.codec_app:app", tmp_path / "codec.log", trio_worker=True)
    await peer.start(ready_path="/health")
    try:
        server = await start_in_process(nursery, [], data_dir)
        assert (await server.admin.post("/deployments", json={"uri": peer.url})).status_code == 201
        async with create_client(server.running.ingress_url, journal_value_codec=Sealed()) as client:
            assert await client.object_call(keep, "k", "ada") == EXPECTED
            assert await client.object_call(reveal, "k", None) == "[ADA]"
        # Without the codec, the ingress answers what the server holds: the encoded output.
        raw = await server.ingress.post("/Vault/k/reveal")
        assert raw.content == PREFIX + b'"[ADA]"'[::-1]
        stored = await server.runtime.store.read(lambda txn: txn.state_of("Vault", "k"))
        assert stored == {"secret": PREFIX + b'"[ADA]"'[::-1]}
        journal = await server.runtime.store.read(
            lambda txn: [entry for record in txn.iter_invocations() for entry in txn.journal(record.id)]
        )
        values = [
            getattr(entry, field)
            for entry in journal
            for field in ("value", "result")
            if isinstance(getattr(entry, field, None), bytes) and getattr(entry, field)
        ]
        assert values and all(value.startswith(PREFIX) for value in values), values
        # A value the codec cannot read fails the attempt with a message saying so (retried), not the endpoint.
        unsealed = (await server.ingress.post("/restate/send/Vault/k2/keep", json="plain")).json()["invocationId"]

        async def failed_clearly() -> bool:
            view = (await server.admin.get(f"/invocations/{unsealed}")).json()
            return "cannot decode" in (view.get("last_failure") or {}).get("message", "")

        await wait_until(failed_clearly)
    finally:
        peer.stop()


@pytest.mark.slow  # the official Restate server and a deployment, as processes
async def test_the_same_through_the_official_restate_server(tmp_path: pathlib.Path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    peer = hypercorn_deployment("tests.apps.codec_app:app", tmp_path / "codec.log", trio_worker=True)
    try:
        await restate.start(ready_path="/health")
        await peer.start(ready_path="/health")
        await restate.register(peer.url)
        async with create_client(restate.ingress_url, journal_value_codec=Sealed()) as client:
            assert await client.object_call(keep, "k", "ada") == EXPECTED
            assert await client.object_call(reveal, "k", None) == "[ADA]"
    finally:
        peer.stop()
        restate.stop()


async def test_embedded_durio_refuses_a_codec_it_could_not_apply() -> None:
    with pytest.raises(TypeError, match="journal_value_codec"):
        durio.server.services_of(app)
    with pytest.raises(NotImplementedError, match="journal value codec"):
        async with durio.create_test_harness(durio.app(list(app.services.values())), journal_value_codec=Sealed()):
            pass
