"""Virtual objects: state per key, one exclusive handler at a time in arrival order, shared readers beside it."""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest
import anyio

import durio as restate
from tests import rawhttp
from tests.conftest import TOUR_APP, start_in_process, wait_until

counter = restate.VirtualObject("Counter")
started: list[int] = []
activity = {"active": 0, "max_active": 0}
awakeables: dict[str, str] = {}
awakeable_ready = {"event": anyio.Event()}


@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    value = (await ctx.get("value", type_hint=int) or 0) + delta
    ctx.set("value", value)
    return value


@counter.handler(kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get("value", type_hint=int) or 0


@counter.handler()
async def record(ctx: restate.ObjectContext, n: int) -> None:
    started.append(n)
    activity["active"] += 1
    activity["max_active"] = max(activity["max_active"], activity["active"])
    try:
        await ctx.sleep(timedelta(milliseconds=5))
        ctx.set("last", n)
    finally:
        activity["active"] -= 1


@counter.handler()
async def hold(ctx: restate.ObjectContext) -> str:
    awakeable_id, promise = ctx.awakeable(type_hint=str)
    awakeables[ctx.key()] = awakeable_id
    awakeable_ready["event"].set()
    ctx.set("holding", True)
    return await promise


@counter.handler(kind="shared")
async def peek_state(ctx: restate.ObjectSharedContext) -> dict:
    return {"keys": await ctx.state_keys(), "value": await ctx.get("value")}


@counter.handler(kind="shared")
async def sneaky_write(ctx: restate.ObjectSharedContext) -> None:
    ctx.set("value", 1000)


@counter.handler()
async def reset(ctx: restate.ObjectContext) -> list:
    ctx.set("a", 1)
    ctx.set("b", 2)
    ctx.clear("a")
    keys_after_clear = await ctx.state_keys()
    ctx.clear_all()
    return [keys_after_clear, await ctx.state_keys()]


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    started.clear()
    activity.update(active=0, max_active=0)
    awakeables.clear()
    awakeable_ready["event"] = anyio.Event()
    return await start_in_process(nursery, [counter], data_dir)


async def test_the_seeds_user_subscriptions_curl_lines(server_process) -> None:
    server = server_process(TOUR_APP)
    await server.start()
    async with server.client() as client:
        for key, subscription in (("user-123", "Hulu"), ("user-123", "Prime"), ("user-123", "Disney"), ("user-456", "Netflix")):
            response = await client.post(f"/restate/call/UserSubscriptions/{key}/add", json=subscription)
            assert response.status_code == 200, response.text
        again = await client.post("/restate/call/UserSubscriptions/user-123/add", json="Hulu")
        assert again.status_code == 200
        user_123 = await client.get("/restate/call/UserSubscriptions/user-123/getSubscriptions")
        user_456 = await client.get("/restate/call/UserSubscriptions/user-456/getSubscriptions")
    assert user_123.json() == ["Hulu", "Prime", "Disney"]
    assert user_456.json() == ["Netflix"]
    assert server.terminate() == 0


async def concurrently(calls: list[typing.Callable[[], typing.Awaitable[tuple[int, bytes]]]]) -> list[int]:
    statuses: list[int] = []

    async def one(call: typing.Callable[[], typing.Awaitable[tuple[int, bytes]]]) -> None:
        statuses.append((await call())[0])

    async with anyio.create_task_group() as nursery:
        for call in calls:
            nursery.start_soon(one, call)
    return statuses


async def test_500_concurrent_adds_on_one_key_give_exactly_500(server) -> None:
    url = server.running.ingress_url + "/restate/call/Counter/hot/add"
    statuses = await concurrently([lambda: rawhttp.request(url, body=1)] * 500)
    assert statuses == [200] * 500
    assert (await server.ingress.get("/restate/call/Counter/hot/get")).json() == 500


async def test_500_adds_spread_over_50_keys_give_10_per_key(server) -> None:
    base = server.running.ingress_url
    calls = [lambda i=i: rawhttp.request(f"{base}/restate/call/Counter/key-{i % 50}/add", body=1) for i in range(500)]
    assert await concurrently(calls) == [200] * 500
    totals = [(await server.ingress.get(f"/restate/call/Counter/key-{k}/get")).json() for k in range(50)]
    assert totals == [10] * 50


async def test_exclusive_handlers_on_one_key_never_overlap_and_start_in_arrival_order(server) -> None:
    ids = []
    for n in range(20):
        sent = await server.ingress.post("/restate/send/Counter/ordered/record", json=n)
        ids.append(sent.json()["invocationId"])
    for invocation_id in ids:
        assert (await server.ingress.get(f"/restate/attach/{invocation_id}")).status_code == 200
    assert started == list(range(20))
    assert activity["max_active"] == 1


async def test_different_keys_run_concurrently(server) -> None:
    async with anyio.create_task_group() as nursery:
        for n in range(10):
            nursery.start_soon(lambda n=n: server.ingress.post(f"/restate/call/Counter/k{n}/record", json=n))
    assert activity["max_active"] > 1


async def test_a_shared_handler_answers_while_an_exclusive_one_is_blocked(server) -> None:
    await server.ingress.post("/restate/call/Counter/busy/add", json=7)
    held = await server.ingress.post("/restate/send/Counter/busy/hold")
    await awakeable_ready["event"].wait()
    queued = await server.ingress.post("/restate/send/Counter/busy/add", json=1)

    with anyio.fail_after(2):
        shared = await server.ingress.get("/restate/call/Counter/busy/get")
    assert shared.json() == 7, "the shared read sees committed state and does not wait for the lock"
    assert (await server.ingress.get(f"/restate/output/{queued.json()['invocationId']}")).status_code == 470

    resolved = await server.ingress.post(f"/restate/awakeables/{awakeables['busy']}/resolve", json="released")
    assert resolved.status_code == 202
    assert (await server.ingress.get(f"/restate/attach/{held.json()['invocationId']}")).json() == "released"
    assert (await server.ingress.get(f"/restate/attach/{queued.json()['invocationId']}")).json() == 8


async def test_a_write_from_a_shared_handler_is_a_clear_error(server) -> None:
    response = await server.ingress.post("/restate/call/Counter/x/sneaky_write")
    assert response.status_code == 500
    assert "shared handler Counter.sneaky_write" in response.json()["message"]
    assert (await server.ingress.get("/restate/call/Counter/x/get")).json() == 0


async def test_clear_clear_all_and_state_keys(server) -> None:
    response = await server.ingress.post("/restate/call/Counter/c/reset")
    assert response.json() == [["b"], []]


async def test_keys_are_any_url_encoded_string(server) -> None:
    for key, encoded in (("a/b c", "a%2Fb%20c"), ("ünï ✓", "%C3%BCn%C3%AF%20%E2%9C%93"), ("%", "%25")):
        await server.ingress.post(f"/restate/call/Counter/{encoded}/add", json=3)
        state = await server.runtime.store.read(lambda txn, key=key: txn.state_of("Counter", key))
        assert state == {"value": b"3"}, key


async def test_a_keyed_object_needs_its_key(server) -> None:
    response = await server.ingress.post("/restate/call/Counter/add", json=1)
    assert response.status_code == 400 and "keyed" in response.json()["message"]


async def test_idle_keys_cost_no_actors(server) -> None:
    for n in range(20):
        await server.ingress.post(f"/restate/call/Counter/idle-{n}/add", json=1)
    await wait_until(lambda: _no_actors(server))


async def _no_actors(server) -> bool:  # type: ignore[no-untyped-def]
    """Neither invocation actors nor key actors (mailboxes) stay alive for idle keys."""
    return not server.runtime.router.actors and not server.runtime.router.keys


async def test_the_admin_state_api_tells_an_unknown_service_from_an_empty_key(server) -> None:
    await server.ingress.post("/restate/call/Counter/seen/add", json=2)
    assert (await server.admin.get("/state/Counter/seen")).json()["state"] == {"value": 2}
    assert (await server.admin.get("/state/Counter/never-used")).json()["state"] == {}
    unknown = await server.admin.get("/state/Countr/seen")
    assert unknown.status_code == 404 and "Countr" in unknown.json()["message"]
    assert (await server.admin.get("/state/Countr")).status_code == 404
