"""The exhaustive crash matrix: every example handler, crashed at every occurrence of every fault point.

After each crash durio restarts on the same files and the scenario runs to the
end. Every check then holds: the outcome is right, each call and send was
delivered once, state is exact, each step whose result was durable at the crash
ran exactly once, and any other step at most twice (it ran, but its result was
not journaled yet: the at-least-once window of `run`).
"""

from __future__ import annotations

import collections
import typing
from datetime import timedelta

import pytest
import anyio

import durio as restate
from durio.actors.runtime import RuntimeConfig
from durio.testing import Crash, TestClient, crash_at_every_step

effects: collections.Counter[str] = collections.Counter()
awakeable_ids: dict[str, str] = {}
signals: dict[str, anyio.Event] = {}


def effect(name: str) -> str:
    effects[name] += 1
    return name


def reset() -> None:
    effects.clear()
    awakeable_ids.clear()
    signals.update(reserved=anyio.Event(), published=anyio.Event())


def step(ctx: restate.Context, name: str) -> typing.Awaitable[str]:
    return ctx.run_typed(name, effect, restate.RunOptions(), f"{ctx.request().id}:{name}")


subscriptions = restate.Service("Subscriptions")
saga = restate.Service("Saga")
counter = restate.VirtualObject("MatrixCounter")
chain_a = restate.Service("ChainA")
chain_b = restate.Service("ChainB")
reminders = restate.Service("Reminders")
approvals = restate.Service("Approvals")
timer = restate.Service("Timer")
signup = restate.Workflow("Signup")
trips = restate.Service("CancelledTrip")
refunds = restate.Service("Refunds")


@subscriptions.handler()
async def subscribe(ctx: restate.Context, names: list[str]) -> int:
    await step(ctx, "pay")
    for name in names:
        await step(ctx, f"add-{name}")
    return len(names)


@saga.handler()
async def book(ctx: restate.Context) -> None:
    undo: list[str] = []
    try:
        for name in ("flight", "hotel"):
            undo.append(name)
            await step(ctx, f"book-{name}")
        raise restate.TerminalError("no car available", 409)
    except restate.TerminalError:
        for name in reversed(undo):
            await step(ctx, f"undo-{name}")
        raise


@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    value = (await ctx.get("value", type_hint=int) or 0) + delta
    ctx.set("value", value)
    history = await ctx.get("history", type_hint=list[int]) or []
    ctx.set("history", [*history, delta])
    return value


@chain_b.handler()
async def leaf(ctx: restate.Context, n: int) -> int:
    await step(ctx, "leaf")
    return n * 2


@chain_a.handler()
async def root(ctx: restate.Context, n: int) -> int:
    doubled = await ctx.service_call(leaf, n)
    ctx.service_send(leaf, n + 100)
    return doubled + 1


@reminders.handler()
async def remind(ctx: restate.Context) -> None:
    await step(ctx, "remind")


@reminders.handler()
async def schedule(ctx: restate.Context) -> str:
    handle = ctx.service_send(remind, None, send_delay=timedelta(hours=6))
    return await handle.invocation_id()


@approvals.handler()
async def approve(ctx: restate.Context) -> str:
    awakeable_id, decision = ctx.awakeable(type_hint=str)

    def publish() -> None:
        awakeable_ids["approve"] = awakeable_id

    await ctx.run_typed("publish", publish)
    return f"decided {await decision}"


approvers = restate.Service("Approvers")


@approvals.handler()
async def approve_by_peer(ctx: restate.Context) -> str:
    """An awakeable resolved by another invocation's handler, then that invocation attached to: commands
    about an invocation that (across partitions) another partition owns."""
    awakeable_id, decision = ctx.awakeable(type_hint=str)
    handle = ctx.service_send(decide, awakeable_id)
    decided = await decision
    peer_said = await ctx.attach_invocation(await handle.invocation_id(), type_hint=str)
    return f"decided {decided}, peer said {peer_said}"


@approvers.handler()
async def decide(ctx: restate.Context, awakeable_id: str) -> str:
    await step(ctx, "decide")
    ctx.resolve_awakeable(awakeable_id, "yes")
    return "done"


@timer.handler()
async def wait_then_act(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(hours=1))
    return await step(ctx, "after-sleep")


@signup.main()
async def register(ctx: restate.WorkflowContext) -> str:
    await step(ctx, "create-user")
    link = await ctx.promise("link", type_hint=str).value()
    await step(ctx, "activate")
    return f"activated via {link}"


@signup.handler()
async def click(ctx: restate.WorkflowSharedContext, link: str) -> None:
    await ctx.promise("link", type_hint=str).resolve(link)


@refunds.handler()
async def refund(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(minutes=1))  # outlasts suspend_after: the trip suspends in its compensation
    return await step(ctx, "refund")


async def reserve(key: str) -> str:
    effect(key)
    signals["reserved"].set()
    return key


@trips.handler()
async def trip(ctx: restate.Context) -> str:
    try:
        # The cancel may land while this step runs: its await then raises the 409, and the saga compensates.
        await ctx.run_typed("reserve", reserve, restate.RunOptions(), f"{ctx.request().id}:reserve")
        # Only a cancellation ends this wait. (A long sleep would race it: on the virtual clock time
        # leaps to the next timer whenever every task waits, even while the cancel is being written.)
        _, never_resolved = ctx.awakeable(type_hint=str)
        await never_resolved
        return "kept"
    except restate.TerminalError:
        # Compensation after a cancellation: a call, a sleep and an awakeable, each surviving a crash.
        await ctx.service_call(refund, None)
        await ctx.sleep(timedelta(minutes=5))
        awakeable_id, confirmed = ctx.awakeable(type_hint=str)

        async def publish() -> None:
            awakeable_ids["release"] = awakeable_id
            signals["published"].set()

        await ctx.run_typed("publish", publish)
        await confirmed
        await step(ctx, "release")
        raise


async def callees(client: TestClient) -> collections.Counter[tuple[str | None, str]]:
    # Across partitions a send's callee is created by a message applied after the sender moved on: let it land.
    while await client.runtime.store.read(lambda txn: txn.partitions_with_messages()):
        await anyio.sleep(0.01)
    records = await client.runtime.store.read(lambda txn: list(txn.iter_invocations()))
    return collections.Counter((r.caller_id, str(r.target)) for r in records if r.caller_id is not None)


def assert_effects_once(expected: set[str], crash: Crash | None) -> None:
    names = {key.split(":", 1)[1] for key in effects}
    assert names == expected, f"side effects {sorted(names)}, expected {sorted(expected)}"
    durable = {f"{invocation_id}:{name}" for invocation_id, name in crash.durable_steps} if crash else set(effects)
    for key, count in effects.items():
        if key in durable:
            assert count == 1, f"{key} was durable before the crash but ran {count} times"
        else:
            assert count <= 2, f"{key} ran {count} times"


# ---------------------------------------------------------------- scenarios


async def subscription_scenario(client: TestClient) -> typing.Any:
    return await client.call("Subscriptions", "subscribe", ["Hulu", "Prime"])


async def saga_scenario(client: TestClient) -> typing.Any:
    try:
        await client.call("Saga", "book")
    except restate.TerminalError as exc:
        return exc.status_code, exc.message
    return None


async def counter_scenario(client: TestClient) -> typing.Any:
    results = [await client.call("MatrixCounter", "add", delta, key="k") for delta in (1, 2, 3)]
    return results, await client.state("MatrixCounter", "k")


async def chain_scenario(client: TestClient) -> typing.Any:
    result = await client.call("ChainA", "root", 5)
    children = await callees(client)
    # The sent leaf may still be running: wait for its side effect too.
    for invocation_id in [r.id for r in await client.runtime.store.read(lambda txn: list(txn.iter_invocations())) if r.caller_id]:
        await client.attach(invocation_id)
    return result, children


async def delayed_send_scenario(client: TestClient) -> typing.Any:
    reminder_id = await client.call("Reminders", "schedule")
    await client.attach(reminder_id)
    return reminder_id, await callees(client)


async def peer_awakeable_scenario(client: TestClient) -> typing.Any:
    return await client.call("Approvals", "approve_by_peer")


async def awakeable_scenario(client: TestClient) -> typing.Any:
    invocation_id = await client.send("Approvals", "approve")
    while "approve" not in awakeable_ids:
        await client.runtime.clock.sleep_until_ms(client.runtime.clock.now_ms() + 5)
    await client.resolve_awakeable(awakeable_ids["approve"], "yes")
    return await client.attach(invocation_id)


async def timer_scenario(client: TestClient) -> typing.Any:
    return await client.call("Timer", "wait_then_act")


async def workflow_scenario(client: TestClient) -> typing.Any:
    run_id = await client.send("Signup", "register", key="ada")
    await client.call("Signup", "click", "link-1", key="ada")
    return await client.attach(run_id)


async def cancelled_saga_scenario(client: TestClient) -> typing.Any:
    # Wait on events the handler sets, not by polling: a poll on the virtual clock makes time fly while
    # storage threads work, so every wait would outlast suspend_after and the run would crawl.
    invocation_id = await client.send("CancelledTrip", "trip")
    await signals["reserved"].wait()  # set by this run, or by the crashed one that made the step durable
    await client.cancel(invocation_id)
    await signals["published"].wait()
    await client.resolve_awakeable(awakeable_ids["release"], "ok")
    try:
        await client.attach(invocation_id)
    except restate.TerminalError as exc:
        return exc.status_code, exc.message, await callees(client)
    return None


SERVICES = [subscriptions, saga, counter, chain_a, chain_b, reminders, approvals, approvers, timer, signup, trips, refunds]

CASES: dict[str, tuple[typing.Callable[[TestClient], typing.Awaitable[typing.Any]], typing.Callable[[typing.Any], None]]] = {}


def case(
    name: str, scenario: typing.Callable[[TestClient], typing.Awaitable[typing.Any]]
) -> typing.Callable[[typing.Callable[[typing.Any], None]], typing.Callable[[typing.Any], None]]:
    def register_check(check: typing.Callable[[typing.Any], None]) -> typing.Callable[[typing.Any], None]:
        CASES[name] = (scenario, check)
        return check

    return register_check


@case("subscription", subscription_scenario)
def check_subscription(result: typing.Any) -> None:
    assert result == 2
    assert_effects_once({"pay", "add-Hulu", "add-Prime"}, CURRENT["crash"])


@case("saga", saga_scenario)
def check_saga(result: typing.Any) -> None:
    assert result == (409, "no car available")
    assert_effects_once({"book-flight", "book-hotel", "undo-hotel", "undo-flight"}, CURRENT["crash"])


@case("object", counter_scenario)
def check_counter(result: typing.Any) -> None:
    values, state = result
    assert values == [1, 3, 6]
    assert state == {"value": 6, "history": [1, 2, 3]}, "no state write lost or doubled"


@case("call chain", chain_scenario)
def check_chain(result: typing.Any) -> None:
    value, children = result
    assert value == 11
    assert list(children.values()) == [2], f"the call and the send were each delivered once: {children}"
    assert_effects_once({"leaf"}, CURRENT["crash"])


@case("delayed send", delayed_send_scenario)
def check_delayed_send(result: typing.Any) -> None:
    _, children = result
    assert list(children.values()) == [1]
    assert_effects_once({"remind"}, CURRENT["crash"])


@case("awakeable", awakeable_scenario)
def check_awakeable(result: typing.Any) -> None:
    assert result == "decided yes"


@case("awakeable resolved by a handler", peer_awakeable_scenario)
def check_peer_awakeable(result: typing.Any) -> None:
    assert result == "decided yes, peer said done"
    assert_effects_once({"decide"}, CURRENT["crash"])


@case("timer", timer_scenario)
def check_timer(result: typing.Any) -> None:
    assert result.endswith("after-sleep")
    assert_effects_once({"after-sleep"}, CURRENT["crash"])


@case("workflow", workflow_scenario)
def check_workflow(result: typing.Any) -> None:
    assert result == "activated via link-1"
    assert_effects_once({"create-user", "activate"}, CURRENT["crash"])


@case("cancelled saga", cancelled_saga_scenario)
def check_cancelled_saga(result: typing.Any) -> None:
    assert result is not None, "the cancelled trip completed normally"
    code, message, children = result
    assert (code, message) == (409, "canceled")
    assert list(children.values()) == [1], f"the compensation's call was made once: {children}"
    assert_effects_once({"reserve", "refund", "release"}, CURRENT["crash"])


CURRENT: dict[str, typing.Any] = {"crash": None}
TOTALS: collections.Counter[str] = collections.Counter()


@pytest.mark.parametrize("name", list(CASES))
async def test_every_crash_point_of_every_example_recovers_exactly(name: str, tmp_path, autojump_clock) -> None:
    scenario, check = CASES[name]

    def check_after(result: typing.Any, crash: Crash | None) -> None:
        CURRENT["crash"] = crash
        check(result)

    report = await crash_at_every_step(SERVICES, scenario, check_after, data_dir=tmp_path, reset=reset)
    TOTALS[name] = report.crash_points
    print(f"{name}: {report.crash_points} crashes over {report.runs} runs; points reached: {report.points}")
    assert report.crash_points >= 10


def test_the_matrix_exercised_hundreds_of_crash_points() -> None:
    """Runs after the matrix (same module, defined last)."""
    if len(TOTALS) < len(CASES):
        pytest.fail("run the whole module: the matrix cases did not all run before this summary")
    total = sum(TOTALS.values())
    print(f"crash matrix: {total} crash points over {len(TOTALS)} examples: {dict(TOTALS)}")
    assert total >= 200


# The same scenarios with the key space cut into partitions inside one process, and everything that
# crosses partitions (a call's callee, a cancel, a kill) sent as a durable message, as between worker
# processes: a crash anywhere on a message's way (written, waiting, applied) loses or doubles nothing.
ACROSS_PARTITIONS = ("call chain", "delayed send", "cancelled saga", "awakeable resolved by a handler")


@pytest.mark.parametrize("name", ACROSS_PARTITIONS)
async def test_every_crash_point_recovers_exactly_when_calls_cross_partitions_as_messages(
    name: str, tmp_path, autojump_clock
) -> None:
    scenario, check = CASES[name]

    def check_after(result: typing.Any, crash: Crash | None) -> None:
        CURRENT["crash"] = crash
        check(result)

    config = RuntimeConfig(sync=False, purge_completed=False, message_partitions=24)
    report = await crash_at_every_step(SERVICES, scenario, check_after, data_dir=tmp_path, reset=reset, config=config)
    print(f"{name} across partitions: {report.crash_points} crashes over {report.runs} runs; points reached: {report.points}")
    assert report.points.get("message.before_apply", 0) >= 1, "no message travelled between partitions"
    assert report.crashed["message.after_apply"] >= 1
