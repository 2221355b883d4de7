"""A stored or delivered value that cannot be decoded fails its step terminally; it is never retried.

Replaying the journal decodes the same bytes again, so a retry cannot help: the
handler's `await` raises TerminalError (which it may catch), and an invocation
that does not catch it completes with that failure instead of retrying forever.
Whatever the deserializer raises counts: json's ValueError for an integer over
4300 digits, pydantic's ValidationError, a custom serde's TypeError.

Also here: the events an invocation keeps for humans (one per failed attempt)
are bounded, so one that does retry forever does not grow without limit.
"""

from __future__ import annotations

import typing

import pydantic
import pytest

import durio as restate
from durio import ids
from durio.sdk.options import Backoff
from durio.storage.lmdb_store import LmdbStore
from durio.storage.txn import EVENTS_KEPT_AT_EACH_END
from tests.conftest import start_in_process, wait_until

HUGE = b"1" * 5000  # valid JSON that Python's json refuses (ValueError: integer over 4300 digits)
published: list[str] = []


class Point(pydantic.BaseModel):
    x: int


class Unreadable(restate.Serde[typing.Any]):
    """A custom serde that writes fine and cannot read back: its deserializer raises TypeError."""

    def serialize(self, obj: typing.Any) -> bytes:
        return b'"written"'

    def deserialize(self, buf: bytes) -> typing.Any:
        raise TypeError("this serde cannot read")


def caught(exc: restate.TerminalError) -> dict:
    return {"caught": exc.message, "code": exc.status_code}


decoding = restate.Service("Decoding")


@decoding.handler()
async def awakeable_result(ctx: restate.Context) -> dict:
    awakeable_id, value = ctx.awakeable()
    await ctx.run_typed("publish", lambda: published.append(awakeable_id))
    try:
        return {"value": await value}
    except restate.TerminalError as exc:
        return caught(exc)


@decoding.handler()
async def pydantic_awakeable_result(ctx: restate.Context) -> dict:
    awakeable_id, value = ctx.awakeable(serde=restate.PydanticJsonSerde(Point))
    await ctx.run_typed("publish", lambda: published.append(awakeable_id))
    try:
        return {"value": (await value).x}
    except restate.TerminalError as exc:
        return caught(exc)


BODIES = {"huge": HUGE, "not-a-point": b'{"x": "not a number"}'}


@decoding.handler()
async def resolve_raw(ctx: restate.Context, request: dict) -> None:
    """Handler code may complete an awakeable with any bytes (a BytesSerde), as a remote deployment may."""
    ctx.resolve_awakeable(request["id"], BODIES[request["body"]], serde=restate.BytesSerde())


@decoding.handler()
async def run_result(ctx: restate.Context) -> dict:
    try:
        return {"value": await ctx.run_typed("step", lambda: "anything", restate.RunOptions(serde=Unreadable()))}
    except restate.TerminalError as exc:
        return caught(exc)


@decoding.handler(output_serde=restate.BytesSerde())
async def huge_number(ctx: restate.Context) -> bytes:
    return HUGE


# The caller's view of Decoding.huge_number: it expects an int (a client stub for another team's service).
stub = restate.Service("Decoding")


@stub.handler(name="huge_number")
async def huge_number_stub(ctx: restate.Context) -> int:
    raise AssertionError("a stub is never run")


@decoding.handler()
async def call_result(ctx: restate.Context) -> dict:
    try:
        return {"value": await ctx.service_call(huge_number_stub, None)}
    except restate.TerminalError as exc:
        return caught(exc)


@decoding.handler()
async def attach_result(ctx: restate.Context) -> dict:
    handle = ctx.service_send(huge_number, None)
    try:
        return {"value": await ctx.attach_invocation(await handle.invocation_id(), type_hint=int)}
    except restate.TerminalError as exc:
        return caught(exc)


@decoding.handler()
async def input_from_a_handler(ctx: restate.Context) -> dict:
    try:
        return {"value": (await ctx.generic_call("Decoding", "takes_an_int", HUGE)).decode()}
    except restate.TerminalError as exc:
        return caught(exc)


@decoding.handler()
async def takes_an_int(ctx: restate.Context, n: int) -> int:
    return n


box = restate.VirtualObject("Box")


@box.handler()
async def state_value(ctx: restate.ObjectContext) -> dict:
    ctx.set("n", HUGE, serde=restate.BytesSerde())
    try:
        return {"value": await ctx.get("n")}
    except restate.TerminalError as exc:
        return caught(exc)


signup = restate.Workflow("Signup")


@signup.main()
async def run(ctx: restate.WorkflowContext) -> dict:
    try:
        return {"value": await ctx.promise("code").value()}
    except restate.TerminalError as exc:
        return caught(exc)


@signup.handler()
async def confirm(ctx: restate.WorkflowSharedContext) -> None:
    await ctx.promise("code", serde=restate.BytesSerde()).resolve(HUGE)


broken = restate.Service("Broken")


@broken.handler()
async def always(ctx: restate.Context) -> None:
    raise RuntimeError("broken on every attempt")


SERVICES = [decoding, box, signup, broken]


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    published.clear()
    return await start_in_process(nursery, SERVICES, data_dir)


async def outcome(server, path: str) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """The handler's answer, and its invocation as the admin API describes it, once it completed."""
    sent = await server.ingress.post(path)
    assert sent.status_code == 202, sent.text
    invocation_id = sent.json()["invocationId"]

    async def completed() -> bool:
        return (await server.admin.get(f"/invocations/{invocation_id}")).json()["status"] == "completed"

    await wait_until(completed, timeout=10)
    described = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    return (await server.ingress.get(f"/restate/output/{invocation_id}")).json(), described


def assert_caught_without_a_retry(answer: dict, described: dict, *fragments: str) -> None:
    assert described["retry_count"] == 0 and described["events"] == [], described
    assert set(answer) == {"caught", "code"}, answer
    for fragment in ("cannot decode", *fragments):
        assert fragment in answer["caught"], answer


@pytest.mark.parametrize(
    ("handler", "body", "fragments"),
    [
        ("awakeable_result", "huge", ["4300 digits"]),
        ("pydantic_awakeable_result", "not-a-point", ["x", "integer"]),
    ],
)
async def test_an_undecodable_awakeable_result_fails_the_await_not_the_invocation(
    server, handler: str, body: str, fragments
) -> None:
    sent = await server.ingress.post(f"/restate/send/Decoding/{handler}")
    invocation_id = sent.json()["invocationId"]

    async def published_one() -> bool:
        return len(published) == 1

    await wait_until(published_one)
    resolved = await server.ingress.post("/restate/call/Decoding/resolve_raw", json={"id": published[0], "body": body})
    assert resolved.status_code == 200, resolved.text

    async def completed() -> bool:
        return (await server.admin.get(f"/invocations/{invocation_id}")).json()["status"] == "completed"

    await wait_until(completed, timeout=10)
    described = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    answer = (await server.ingress.get(f"/restate/output/{invocation_id}")).json()
    assert_caught_without_a_retry(answer, described, *fragments)
    assert answer["code"] == 500


@pytest.mark.parametrize(
    ("path", "fragments"),
    [
        ("/restate/send/Decoding/run_result", ["TypeError", "this serde cannot read"]),
        ("/restate/send/Decoding/call_result", ["4300 digits"]),
        ("/restate/send/Decoding/attach_result", ["4300 digits"]),
        ("/restate/send/Box/b1/state_value", ["4300 digits"]),
    ],
)
async def test_an_undecodable_step_result_fails_the_await_not_the_invocation(server, path: str, fragments) -> None:
    answer, described = await outcome(server, path)
    assert_caught_without_a_retry(answer, described, *fragments)


async def test_an_undecodable_promise_value_fails_the_await_not_the_run(server) -> None:
    started = await server.ingress.post("/restate/send/Signup/w1/run")
    run_id = started.json()["invocationId"]
    assert (await server.ingress.post("/restate/call/Signup/w1/confirm")).status_code == 200

    async def completed() -> bool:
        return (await server.admin.get(f"/invocations/{run_id}")).json()["status"] == "completed"

    await wait_until(completed, timeout=10)
    described = (await server.admin.get(f"/invocations/{run_id}")).json()
    answer = (await server.ingress.get("/restate/workflow/Signup/w1/output")).json()
    assert_caught_without_a_retry(answer, described, "4300 digits")


async def test_undecodable_input_from_another_handler_is_a_terminal_400(server) -> None:
    answer, described = await outcome(server, "/restate/send/Decoding/input_from_a_handler")
    assert described["retry_count"] == 0
    assert answer["code"] == 400 and "cannot read the input of Decoding.takes_an_int" in answer["caught"], answer
    assert "4300 digits" in answer["caught"]


# ---------------------------------------------------------------- bounded events


async def test_an_invocation_retrying_forever_keeps_its_first_and_last_ten_events_and_counts_the_rest(nursery, data_dir) -> None:
    fast = Backoff(initial_s=0.001, factor=1.0, max_s=0.001, jitter=0.0)
    server = await start_in_process(nursery, SERVICES, data_dir, invocation_backoff=fast)
    invocation_id = (await server.ingress.post("/restate/send/Broken/always")).json()["invocationId"]

    async def retried_often() -> bool:
        return (await server.admin.get(f"/invocations/{invocation_id}")).json()["retry_count"] >= 40

    await wait_until(retried_often)
    described = (await server.admin.get(f"/invocations/{invocation_id}")).json()
    kept = [event["retry_count"] for event in described["events"]]
    retries = described["retry_count"]  # read in the same transaction as the events
    assert kept == list(range(1, 11)) + list(range(retries - 9, retries + 1)), kept
    assert described["events_dropped"] == retries - 20
    assert "broken on every attempt" in described["events"][-1]["message"]
    await server.admin.patch(f"/invocations/{invocation_id}/kill")


def test_events_are_kept_at_both_ends_per_invocation_and_deleted_with_it(tmp_path) -> None:
    store = LmdbStore(tmp_path / "data", sync=False)
    try:
        first, second = ids.new_invocation_id(), ids.new_invocation_id()

        def add(invocation_id: str, count: int, start: int) -> typing.Callable:
            return lambda txn: [txn.add_event(invocation_id, start + n, {"n": n}) for n in range(count)]

        store.commit_batch([add(first, 25, 100), add(second, 3, 1000)])
        store.commit_batch([add(first, 1, 2000)])
        events = store.read(
            lambda txn: (txn.events(first), txn.events_dropped(first), txn.events(second), txn.events_dropped(second))
        )
        kept = EVENTS_KEPT_AT_EACH_END
        assert [e["n"] for e in events[0]] == list(range(kept)) + list(range(25 - kept + 1, 25)) + [0]
        assert events[1] == 26 - 2 * kept
        assert [e["n"] for e in events[2]] == [0, 1, 2] and events[3] == 0
        store.commit_batch([lambda txn: txn.delete_events(first)])
        assert store.read(lambda txn: (txn.events(first), txn.events_dropped(first))) == ([], 0)
    finally:
        store.close()
