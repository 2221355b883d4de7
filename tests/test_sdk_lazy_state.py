"""Lazy state (`enable_lazy_state=True`, `state_preload=False`): the deployment gets no state up front and
asks the server for each key it reads, so `state_keys()` after `clear()` is what the invocation left.

durio as the server sends lazy deployments no state (as Restate does), and durio.app as the deployment
asks for what it lacks; checked together with the official SDK and the official Restate server."""

from __future__ import annotations

import pathlib
import typing

import httpx
import pytest

from tests.remote_peers import Peer, RestateServer, hypercorn_deployment

AFTER_CHURN = {"keys": ["b"], "a": None, "b": 2, "after_clear_all": [], "c": 3}
# The official SDK's own answer with eager state (on Restate too): its state_keys() misses its own clear().
OFFICIAL_EAGER = dict(AFTER_CHURN, keys=["a", "b"])


def deployment(tmp_path: pathlib.Path, sdk: str) -> Peer:
    return hypercorn_deployment(
        "tests.apps.lazy_state_app:app", tmp_path / f"{sdk}.log", {"LAZY_STATE_SDK": sdk}, trio_worker=sdk == "durio"
    )


async def churn_everything(ingress_url: str) -> dict[str, typing.Any]:
    results = {}
    async with httpx.AsyncClient(base_url=ingress_url, timeout=60) as client:
        for service in ("LazyState", "NotPreloaded", "EagerState"):
            churned = await client.post(f"/{service}/k/churn")
            assert churned.status_code == 200, churned.text
            peeked = await client.post(f"/{service}/k/peek")
            assert peeked.json() == {"keys": ["c"], "c": 3}
            results[service] = churned.json()
    return results


@pytest.mark.parametrize("sdk", ["durio", "official"])
async def test_lazy_state_on_a_durio_server(server_process: typing.Any, tmp_path: pathlib.Path, sdk: str) -> None:
    peer = deployment(tmp_path, sdk)
    await peer.start(ready_path="/health")
    try:
        server = server_process(None)
        await server.start()
        async with server.client(admin=True) as admin:
            registered = await admin.post("/deployments", json={"uri": peer.url})
            assert registered.status_code == 201, registered.text
        results = await churn_everything(server.ingress_url)
    finally:
        peer.stop()
    assert results["LazyState"] == results["NotPreloaded"] == AFTER_CHURN
    assert results["EagerState"] == (AFTER_CHURN if sdk == "durio" else OFFICIAL_EAGER)


async def test_durio_app_with_lazy_state_on_the_official_restate_server(tmp_path: pathlib.Path) -> None:
    restate = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    peer = deployment(tmp_path, "durio")
    try:
        await restate.start(ready_path="/health")
        await peer.start(ready_path="/health")
        await restate.register(peer.url)
        results = await churn_everything(restate.ingress_url)
    finally:
        peer.stop()
        restate.stop()
    assert results == {"LazyState": AFTER_CHURN, "NotPreloaded": AFTER_CHURN, "EagerState": AFTER_CHURN}
