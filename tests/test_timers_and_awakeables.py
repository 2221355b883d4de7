"""Durable timers, awakeables and combinators, on a virtual clock and over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import anyio

import durio as restate
from durio.actors.runtime import RuntimeConfig, open_runtime
from durio import ids
from durio.cli import load_services

from tests.conftest import TOUR_APP, invoke, start_in_process, wait_until

clockwork = restate.Service("Clockwork")
observed: list[str] = []


@clockwork.handler()
async def sleep_a_day(ctx: restate.Context) -> float:
    before = await ctx.time()
    await ctx.sleep(timedelta(days=1))
    return await ctx.time() - before


@clockwork.handler()
async def race(ctx: restate.Context, ms: int) -> list:
    awakeable_id, confirmation = ctx.awakeable(type_hint=str)
    observed.append(awakeable_id)
    return await restate.select(confirmed=confirmation, timeout=ctx.sleep(timedelta(milliseconds=ms)))


@clockwork.handler()
async def fan_out(ctx: restate.Context) -> list:
    futures = [ctx.sleep(timedelta(milliseconds=ms)) for ms in (300, 100, 200)]
    order = []
    async for future in restate.as_completed(*futures):
        order.append(futures.index(future))
    done, pending = await restate.wait_completed(ctx.sleep(timedelta(hours=1)), ctx.sleep(timedelta(milliseconds=1)))
    return [order, len(done), len(pending)]


@clockwork.handler()
async def gather_runs(ctx: restate.Context) -> list:
    async def step(n: int) -> int:
        await anyio.sleep(0.01 * (3 - n))
        return n * n

    futures = [ctx.run_typed(f"square-{n}", step, restate.RunOptions(), n) for n in range(3)]
    results = await restate.gather(*futures)
    return [await f for f in results]


@clockwork.handler()
async def wait_for_awakeable(ctx: restate.Context) -> str:
    awakeable_id, confirmation = ctx.awakeable(type_hint=str)
    observed.append(awakeable_id)
    return await confirmation


@clockwork.handler()
async def publish_then_wait(ctx: restate.Context) -> str:
    """Publishes its awakeable, then sleeps before awaiting it: a resolve can come first."""
    awakeable_id, confirmation = ctx.awakeable(type_hint=str)
    await ctx.run_typed("publish", lambda: observed.append(awakeable_id))
    await ctx.sleep(timedelta(milliseconds=500))
    return await confirmation


@clockwork.handler()
async def resolve_for_someone(ctx: restate.Context, awakeable_id: str) -> str:
    ctx.resolve_awakeable(awakeable_id, "from a handler")
    return "resolved"


async def test_a_handler_that_sleeps_a_simulated_day_runs_in_milliseconds(autojump_clock, tmp_path) -> None:
    started = time.monotonic()
    async with open_runtime([clockwork], tmp_path / "data") as runtime:
        elapsed = await invoke(runtime, "Clockwork", "sleep_a_day")
    assert elapsed >= 24 * 3600
    assert time.monotonic() - started < 10


async def test_the_tours_payment_times_out_after_30_seconds_and_cancels_the_payment(autojump_clock, tmp_path, capsys) -> None:
    services = load_services(str(TOUR_APP))
    async with open_runtime(services, tmp_path / "data") as runtime:
        started = anyio.current_time()
        result = await invoke(
            runtime,
            "PaymentsWithTimeout",
            "process",
            {"amount": 100, "currency": "USD", "customerId": "cust-123", "orderId": "order-456"},
        )
        waited = anyio.current_time() - started
    assert result == {"success": False, "transactionId": None, "errorMessage": "Payment timeout"}
    assert 30 <= waited < 35
    output = capsys.readouterr().out
    assert output.count(">>> Cancelled payment") == 1


async def test_select_returns_whichever_completed_first(tmp_path) -> None:
    # A real clock: on a virtual one, waiting for storage threads lets the clock jump past the race.
    observed.clear()
    async with open_runtime([clockwork], tmp_path / "data") as runtime:
        assert await invoke(runtime, "Clockwork", "race", 50) == ["timeout", None]
        async with anyio.create_task_group() as nursery:
            results = []

            async def run_race() -> None:
                results.append(await invoke(runtime, "Clockwork", "race", 60_000))

            nursery.start_soon(run_race)
            await wait_until(lambda: _observed_count(2))
            await runtime.write(runtime.transitions.complete_awakeable(observed[-1], b'"yes"'))
        assert results == [["confirmed", "yes"]]


async def _observed_count(count: int) -> bool:
    return len(observed) >= count


async def test_as_completed_and_wait_completed_follow_completion_order(autojump_clock, tmp_path) -> None:
    async with open_runtime([clockwork], tmp_path / "data") as runtime:
        assert await invoke(runtime, "Clockwork", "fan_out") == [[1, 2, 0], 1, 1]


async def test_gather_waits_for_every_run_step(tmp_path) -> None:
    async with open_runtime([clockwork], tmp_path / "data") as runtime:
        assert await invoke(runtime, "Clockwork", "gather_runs") == [0, 1, 4]


async def test_a_replay_takes_the_branch_the_journal_recorded(tmp_path) -> None:
    """Suspend after every wait, so each step is reached by replaying the journal."""
    config = RuntimeConfig(suspend_after_s=0.0)
    async with open_runtime([clockwork], tmp_path / "data", config) as runtime:
        assert await invoke(runtime, "Clockwork", "fan_out") == [[1, 2, 0], 1, 1]
        assert await invoke(runtime, "Clockwork", "race", 20) == ["timeout", None]


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    observed.clear()
    return await start_in_process(nursery, [clockwork], data_dir, suspend_after_s=0.0)


async def test_an_awakeable_resolved_before_it_is_awaited_is_delivered_once(server) -> None:
    sent = await server.ingress.post("/restate/send/Clockwork/publish_then_wait")
    invocation_id = sent.json()["invocationId"]
    await wait_until(lambda: _observed_count(1))
    first = await server.ingress.post(f"/restate/awakeables/{observed[0]}/resolve", json="early")
    assert first.status_code == 202
    result = await server.ingress.get(f"/restate/attach/{invocation_id}")
    assert result.json() == "early"
    journal = (await server.admin.get(f"/invocations/{invocation_id}")).json()["journal"]
    signals = [entry for entry in journal if entry["type"] == "signal"]
    assert len(signals) == 1, journal
    sleep = next(entry for entry in journal if entry["type"] == "sleep")
    woke = next(entry for entry in journal if entry["type"] == "completion" and entry["completion_id"] == sleep["completion_id"])
    assert signals[0]["index"] < woke["index"], "the resolve arrived while the handler still slept, before it awaited"


async def test_resolving_an_awakeable_twice_is_a_clear_error(server) -> None:
    sent = await server.ingress.post("/restate/send/Clockwork/wait_for_awakeable")
    await wait_until(lambda: _observed_count(1))
    assert (await server.ingress.post(f"/restate/awakeables/{observed[0]}/resolve", json="once")).status_code == 202
    again = await server.ingress.post(f"/restate/awakeables/{observed[0]}/resolve", json="twice")
    assert again.status_code == 409
    assert "already completed" in again.json()["message"]
    assert (await server.ingress.get(f"/restate/attach/{sent.json()['invocationId']}")).json() == "once"


async def test_rejecting_an_awakeable_raises_terminal_error_in_the_handler(server) -> None:
    sent = await server.ingress.post("/restate/send/Clockwork/wait_for_awakeable")
    await wait_until(lambda: _observed_count(1))
    assert (await server.ingress.post(f"/restate/awakeables/{observed[0]}/reject", content=b"declined")).status_code == 202
    result = await server.ingress.get(f"/restate/attach/{sent.json()['invocationId']}")
    assert result.status_code == 500 and result.json()["message"] == "declined"


async def test_bad_and_unknown_awakeable_ids(server) -> None:
    assert (await server.ingress.post("/restate/awakeables/sign_1nope/resolve", json=1)).status_code == 400
    unknown = "sign_1STxC7Rw88bwBjlJXuZgAfbf08_R-gJWEAAAAEQ"
    assert (await server.ingress.post(f"/restate/awakeables/{unknown}/resolve", json=1)).status_code == 404
    assert (await server.ingress.get(f"/restate/awakeables/{unknown}/resolve")).status_code == 405


async def _sleeping_victim(server) -> str:  # type: ignore[no-untyped-def]
    sent = await server.ingress.post("/restate/send/Clockwork/sleep_a_day")
    invocation_id = sent.json()["invocationId"]

    async def suspended() -> bool:
        return (await server.admin.get(f"/invocations/{invocation_id}")).json()["status"] == "suspended"

    await wait_until(suspended)
    return invocation_id


async def _assert_untouched(server, invocation_id: str) -> None:  # type: ignore[no-untyped-def]
    view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    assert view["status"] == "suspended", view
    assert not [entry for entry in view["journal"] if entry["type"] == "signal"], view["journal"]


@pytest.mark.parametrize("index", [1, 2, 16])
@pytest.mark.parametrize("verb", ["resolve", "reject"])
async def test_the_ingress_refuses_an_awakeable_id_with_a_reserved_signal_index(server, index: int, verb: str) -> None:
    """Index 1 is Restate's cancel signal: with only an invocation id, anyone could cancel it through the ingress."""
    victim = await _sleeping_victim(server)
    response = await server.ingress.post(f"/restate/awakeables/{ids.awakeable_id(victim, index)}/{verb}", json="x")
    assert response.status_code == 400, response.text
    assert "does not name an awakeable" in response.json()["message"]
    await _assert_untouched(server, victim)
    ok = await server.ingress.post(f"/restate/awakeables/{ids.awakeable_id(victim, 17)}/{verb}", json="x")
    assert ok.status_code == 202, "the same invocation's first awakeable is a real one"


async def test_handler_code_and_the_runtime_cannot_complete_a_reserved_signal_either(server) -> None:
    victim = await _sleeping_victim(server)
    reserved = ids.awakeable_id(victim, 1)
    response = await server.ingress.post("/restate/call/Clockwork/resolve_for_someone", json=reserved)
    assert response.status_code == 400, response.text
    assert response.json()["source"] == "invocation" and "does not name an awakeable" in response.json()["message"]
    with pytest.raises(ids.InvalidId, match="does not name an awakeable"):
        await server.runtime.write(server.runtime.transitions.complete_awakeable(reserved, b'"x"'))
    await _assert_untouched(server, victim)


async def test_a_waiting_invocation_is_suspended_and_holds_no_actor(server) -> None:
    sent = await server.ingress.post("/restate/send/Clockwork/wait_for_awakeable")
    invocation_id = sent.json()["invocationId"]

    async def suspended() -> bool:
        view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
        return view["status"] == "suspended"

    await wait_until(suspended)
    assert invocation_id not in server.runtime.router.actors
    view = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    assert view["awaiting"] == ["awakeable (signal 17)"]


@pytest.mark.slow  # ten thousand invocations written and suspended: seconds
async def test_ten_thousand_sleeping_invocations_leave_the_server_responsive(tmp_path) -> None:
    sleeper = restate.Service("HourSleeper")

    @sleeper.handler()
    async def nap(ctx: restate.Context) -> None:
        await ctx.sleep(timedelta(hours=1))

    async with open_runtime([sleeper], tmp_path / "data", RuntimeConfig(suspend_after_s=0.0)) as runtime:
        async with anyio.create_task_group() as nursery:
            for _ in range(10_000):
                nursery.start_soon(lambda: invoke(runtime, "HourSleeper", "nap", send=True))

        async def all_suspended() -> bool:
            return not runtime.router.actors

        await wait_until(all_suspended, timeout=120)
        count = await runtime.store.read(lambda txn: sum(1 for r in txn.iter_invocations() if r.status == "suspended"))
        assert count == 10_000
        assert len(runtime.timers) <= 2 * 4096, "only a window of the timers is kept in memory"
        started = anyio.current_time()
        clockwork_result = await invoke(runtime, "HourSleeper", "nap", send=True)
        assert clockwork_result.startswith("inv_1")
        assert anyio.current_time() - started < 1.0
