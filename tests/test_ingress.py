"""The ingress API over real HTTP: calls, sends, attach/output, idempotency keys, and bad input."""

from __future__ import annotations

import dataclasses
import re
import threading
from datetime import timedelta

import httpx
import pydantic
import pytest
import anyio
import anyio.lowlevel

import durio as restate
from durio.actors.registry import Registry
from durio.actors.runtime import RuntimeConfig
from tests.conftest import start_in_process, wait_until

greeter = restate.Service("Greeter")
executions: list[str] = []


@dataclasses.dataclass
class Greeting:
    name: str
    excited: bool = False


@greeter.handler()
async def greet(ctx: restate.Context, greeting: Greeting) -> str:
    executions.append(greeting.name)
    return f"Hello {greeting.name}{'!' if greeting.excited else ''}"


@greeter.handler()
async def slow(ctx: restate.Context, name: str) -> dict:
    async def count() -> int:
        executions.append(name)
        await anyio.sleep(0.2)
        return len(executions)

    number = await ctx.run_typed("count", count)
    return {"name": name, "number": number}


@greeter.handler()
async def nothing(ctx: restate.Context) -> None:
    return None


@greeter.handler()
async def refuse(ctx: restate.Context, code: int) -> str:
    raise restate.TerminalError(f"refused with {code}", code)


class Order(pydantic.BaseModel):
    item: str
    quantity: int


class Receipt(pydantic.BaseModel):
    item: str
    total_cents: int


@greeter.handler()
async def order(ctx: restate.Context, order: Order) -> Receipt:
    executions.append(type(order).__name__)
    return Receipt(item=order.item, total_cents=order.quantity * 250)


class Reading(pydantic.BaseModel):
    value: float


@greeter.handler()
async def echo(ctx: restate.Context, value):  # type: ignore[no-untyped-def]
    return value


@greeter.handler()
async def halve(ctx: restate.Context, x: float) -> float:
    return x / 2


@greeter.handler()
async def scale(ctx: restate.Context, reading: Reading) -> float:
    return reading.value * 2


@greeter.handler()
async def not_a_number(ctx: restate.Context) -> float:
    executions.append("not_a_number")
    return float("nan")


@greeter.handler()
async def measure(ctx: restate.Context) -> str:
    try:
        await ctx.run_typed("read the sensor", lambda: float("inf"))
    except restate.TerminalError as exc:
        return f"caught: {exc.message}"
    return "no error"


published: list[str] = []


@greeter.handler()
async def wait_for_word(ctx: restate.Context) -> str:
    awakeable_id, word = ctx.awakeable(type_hint=str)
    await ctx.run_typed("publish", lambda: published.append(awakeable_id))
    return await word


SHORT_RETENTION = timedelta(seconds=1)


@greeter.handler(idempotency_retention=SHORT_RETENTION)
async def count_briefly_remembered(ctx: restate.Context, name: str) -> int:
    executions.append(name)
    return len(executions)


SERVICES = [greeter]


@pytest.fixture
async def server(nursery, data_dir):  # type: ignore[no-untyped-def]
    executions.clear()
    published.clear()
    return await start_in_process(nursery, SERVICES, data_dir)


async def test_call_returns_the_output_and_the_invocation_id(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/greet", json={"name": "Ada", "excited": True})
    assert response.status_code == 200
    assert response.json() == "Hello Ada!"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-restate-id"].startswith("inv_1")


async def test_the_unversioned_path_is_the_same_call(server) -> None:
    response = await server.ingress.post("/Greeter/greet", json={"name": "Bo"})
    assert response.status_code == 200 and response.json() == "Hello Bo"


async def test_a_handler_returning_none_answers_an_empty_200(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/nothing")
    assert response.status_code == 200 and response.content == b""


async def test_a_terminal_error_answers_with_its_code_as_status(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/refuse", json=422)
    assert response.status_code == 422
    assert response.json() == {"code": 422, "message": "refused with 422", "source": "invocation"}
    assert response.headers["x-restate-error-source"] == "invocation"


async def test_send_answers_202_then_attach_and_output_give_the_result(server) -> None:
    sent = await server.ingress.post("/restate/send/Greeter/slow", json="Cy")
    assert sent.status_code == 202
    body = sent.json()
    assert body["status"] == "Accepted" and sent.headers["x-restate-id"] == body["invocationId"]
    not_ready = await server.ingress.get(f"/restate/output/{body['invocationId']}")
    assert not_ready.status_code == 470
    assert not_ready.json()["message"] == "the invocation exists but has not completed yet"
    attached = await server.ingress.get(f"/restate/attach/{body['invocationId']}")
    assert attached.status_code == 200 and attached.json()["name"] == "Cy"
    output = await server.ingress.get(f"/restate/output/{body['invocationId']}")
    assert output.status_code == 200 and output.json() == attached.json()


async def test_the_unversioned_send_form(server) -> None:
    sent = await server.ingress.post("/Greeter/greet/send", json={"name": "Di"})
    assert sent.status_code == 202 and sent.json()["status"] == "Accepted"


async def test_a_delayed_send_reports_its_execution_time_and_runs_later(server) -> None:
    sent = await server.ingress.post("/restate/send/Greeter/greet?delay=300ms", json={"name": "Ed"})
    assert sent.status_code == 202
    assert sent.json()["executionTime"].endswith("Z")
    await anyio.sleep(0.1)
    assert executions == []
    attached = await server.ingress.get(f"/restate/attach/{sent.json()['invocationId']}")
    assert attached.json() == "Hello Ed" and executions == ["Ed"]


@pytest.mark.parametrize("delay", ["10s", "500ms", "1m30s", "PT10S", "2000"])
async def test_delay_accepts_every_documented_form(server, delay: str) -> None:
    sent = await server.ingress.post(f"/restate/send/Greeter/nothing?delay={delay}")
    assert sent.status_code == 202, sent.text


async def test_the_same_idempotency_key_twenty_times_at_once_runs_once(server) -> None:
    answers: list[httpx.Response] = []

    async def call() -> None:
        answers.append(await server.ingress.post("/restate/call/Greeter/slow", json="Fay", headers={"Idempotency-Key": "k-20"}))

    async with anyio.create_task_group() as nursery:
        for _ in range(20):
            nursery.start_soon(call)
    assert executions == ["Fay"]
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert len({a.headers["x-restate-id"] for a in answers}) == 1


async def test_an_idempotent_call_after_completion_gets_the_stored_result(server) -> None:
    first = await server.ingress.post("/restate/call/Greeter/slow", json="Gus", headers={"Idempotency-Key": "k-1"})
    again = await server.ingress.post("/restate/call/Greeter/slow", json="Gus", headers={"Idempotency-Key": "k-1"})
    assert again.content == first.content and executions == ["Gus"]
    other = await server.ingress.post("/restate/call/Greeter/slow", json="Gus", headers={"Idempotency-Key": "k-2"})
    assert other.json()["number"] == 2


async def test_an_idempotent_send_twice_is_previously_accepted(server) -> None:
    first = await server.ingress.post("/restate/send/Greeter/slow", json="Hal", headers={"Idempotency-Key": "s-1"})
    second = await server.ingress.post("/restate/send/Greeter/slow", json="Hal", headers={"Idempotency-Key": "s-1"})
    assert first.json()["status"] == "Accepted"
    assert second.json() == {"invocationId": first.json()["invocationId"], "status": "PreviouslyAccepted"}


async def test_a_short_idempotency_retention_dedupes_until_it_expires_then_runs_again(server) -> None:
    path = "/restate/call/Greeter/count_briefly_remembered"
    headers = {"Idempotency-Key": "brief"}
    first = await server.ingress.post(path, json="Jo", headers=headers)
    assert first.status_code == 200 and first.json() == 1
    invocation_id = first.headers["x-restate-id"]
    record = await server.runtime.get_record(invocation_id)
    assert record.retention_ms == SHORT_RETENTION.total_seconds() * 1000
    duplicate = await server.ingress.post(path, json="Jo", headers=headers)
    assert duplicate.status_code == 200 and duplicate.json() == 1, "the stored result, before the retention ends"
    assert duplicate.headers["x-restate-id"] == invocation_id
    assert executions == ["Jo"]

    async def forgotten() -> bool:
        return await server.runtime.get_record(invocation_id) is None

    await wait_until(forgotten, timeout=10)
    after_expiry = await server.ingress.post(path, json="Jo", headers=headers)
    assert after_expiry.status_code == 200 and after_expiry.json() == 2, "the key is free again: the handler ran again"
    assert executions == ["Jo", "Jo"]


async def test_the_default_idempotency_retention_is_24_hours(server) -> None:
    day_ms = 24 * 3600 * 1000
    assert RuntimeConfig().retention_ms == day_ms
    assert Registry([greeter]).retention_ms(greeter.handlers["greet"], idempotent=True) == day_ms
    assert server.runtime.registry.retention_ms(greeter.handlers["greet"], idempotent=True) == day_ms
    response = await server.ingress.post("/restate/call/Greeter/greet", json={"name": "Kim"}, headers={"Idempotency-Key": "d"})
    assert response.status_code == 200
    record = await server.runtime.get_record(response.headers["x-restate-id"])
    assert record.idempotency_key == "d" and record.retention_ms == day_ms
    # The handler-level option changes it for that handler only.
    assert server.runtime.registry.retention_ms(greeter.handlers["count_briefly_remembered"], idempotent=True) == 1000


# ---------------------------------------------------------------- pydantic models


async def test_pydantic_models_are_handler_input_and_output(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/order", json={"item": "tea", "quantity": 3})
    assert response.status_code == 200, response.text
    assert response.json() == {"item": "tea", "total_cents": 750}
    assert executions == ["Order"], "the handler received an Order, not a dict"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"item": "tea", "quantity": "lots"}, "valid integer"),
        ({"item": "tea"}, "Field required"),
        ({"item": ["not", "a", "string"], "quantity": 1}, "valid string"),
    ],
)
async def test_a_body_that_does_not_fit_the_pydantic_model_is_400_naming_the_field(server, body, problem: str) -> None:
    response = await server.ingress.post("/restate/call/Greeter/order", json=body)
    field = "item" if "valid string" in problem else "quantity"
    assert_ingress_error(response, 400, "Greeter.order", field, problem)
    assert executions == []
    assert await server.runtime.store.read(lambda txn: txn.count_invocations()) == 0


# ---------------------------------------------------------------- group commit


async def test_concurrent_sends_are_group_committed_off_the_loop_thread(server, monkeypatch) -> None:
    backend = server.runtime.store.backend
    writer = server.runtime.store.writer
    commit_batch = backend.commit_batch
    commits: list[tuple[bool, bool, int]] = []  # (on the main thread, inside the event loop, ops)

    def recording_commit_batch(ops, before_commit=None):  # type: ignore[no-untyped-def]
        try:
            anyio.lowlevel.current_token()
            in_loop = True
        except RuntimeError:
            in_loop = False
        commits.append((threading.current_thread() is threading.main_thread(), in_loop, len(ops)))
        return commit_batch(ops, before_commit)

    monkeypatch.setattr(backend, "commit_batch", recording_commit_batch)
    before = writer.statistics()
    completed_before = server.runtime.stats.completed_success
    sends = 200
    statuses: list[int] = []

    async def send() -> None:
        statuses.append((await server.ingress.post("/restate/send/Greeter/nothing")).status_code)

    async with anyio.create_task_group() as nursery:
        for _ in range(sends):
            nursery.start_soon(send)
    assert statuses == [202] * sends

    async def all_completed() -> bool:
        return server.runtime.stats.completed_success - completed_before >= sends

    await wait_until(all_completed)
    after = writer.statistics()
    batches, ops = after.batches - before.batches, after.ops - before.ops
    assert ops >= sends, "every send is at least one write"
    assert batches < ops, f"{ops} writes took {batches} transactions: nothing was batched"
    assert after.largest_batch > 1
    assert commits, "the monkeypatched commit was used"
    assert sum(n for _, _, n in commits) >= ops and max(n for _, _, n in commits) > 1
    assert not any(main for main, _, _ in commits), "an LMDB commit ran on the main (event loop's) thread"
    assert not any(in_loop for _, in_loop, _ in commits), "an LMDB commit ran inside the event loop"

    metrics = (await server.admin.get("/metrics")).text
    exposed = {name: int(value) for name, value in re.findall(r"^(durio_writer_\w+_total) (\d+)$", metrics, re.M)}
    assert exposed["durio_writer_batches_total"] < exposed["durio_writer_ops_total"]
    assert exposed["durio_writer_ops_total"] >= after.ops


async def test_health_lists_the_services(server) -> None:
    response = await server.ingress.get("/restate/health")
    assert response.status_code == 200 and response.json() == {"services": ["Greeter"]}
    assert (await server.admin.get("/health")).status_code == 200


# ---------------------------------------------------------------- bad input


def assert_ingress_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["source"] == "ingress"
    assert response.headers["x-restate-error-source"] == "ingress"
    for fragment in fragments:
        assert fragment in body["message"], body["message"]


async def test_unknown_service_is_404(server) -> None:
    assert_ingress_error(await server.ingress.post("/restate/call/Nobody/greet", json={}), 404, "Nobody")


async def test_unknown_handler_is_404(server) -> None:
    assert_ingress_error(await server.ingress.post("/restate/call/Greeter/shout", json={}), 404, "shout")


async def test_malformed_json_is_400(server) -> None:
    response = await server.ingress.post(
        "/restate/call/Greeter/greet", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_ingress_error(response, 400, "not valid JSON")


async def test_a_body_of_the_wrong_shape_is_400(server) -> None:
    assert_ingress_error(await server.ingress.post("/restate/call/Greeter/greet", json={"nom": "x"}), 400, "name")
    assert_ingress_error(await server.ingress.post("/restate/call/Greeter/refuse", json="not a number"), 400, "integer")


async def test_invalid_utf8_is_400(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/slow", content=b'"\xff\xfe"')
    assert_ingress_error(response, 400, "UTF-8")
    # A surrogate encoded as if it were a character is not UTF-8 either (Python's json.loads would take it).
    surrogate = await server.ingress.post("/restate/call/Greeter/slow", content=b'"ab\xed\xa0\x80cd"')
    assert_ingress_error(surrogate, 400, "UTF-8")
    utf16 = await server.ingress.post("/restate/call/Greeter/slow", content='"hi"'.encode("utf-16"))
    assert_ingress_error(utf16, 400, "UTF-8")
    escaped = await server.ingress.post("/restate/call/Greeter/slow", content=b'"\\ud800"')
    assert escaped.status_code == 200, "an escaped lone surrogate is valid JSON text"


NOT_JSON_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"[1, NaN]"]


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
@pytest.mark.parametrize("handler", ["echo", "halve", "scale"])
async def test_nan_infinity_and_out_of_range_numbers_are_not_json_input(server, handler: str, number: bytes) -> None:
    """Python's json reads them (and pydantic's parser too); no JSON parser elsewhere does."""
    body = b'{"value": ' + number + b"}" if handler == "scale" else number
    response = await server.ingress.post(f"/restate/call/Greeter/{handler}", content=body)
    assert_ingress_error(response, 400, f"Greeter.{handler}")
    assert any(word in response.json()["message"] for word in ("NaN", "Infinity", "range")), response.json()
    assert await server.runtime.store.read(lambda txn: txn.count_invocations()) == 0


async def test_a_handler_returning_nan_fails_once_with_a_clear_message_instead_of_answering_invalid_json(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/not_a_number")
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["source"] == "invocation", body
    assert "Greeter.not_a_number" in body["message"] and "nan" in body["message"] and "JSON" in body["message"], body
    described = (await server.admin.get(f"/invocations/{response.headers['x-restate-id']}")).json()
    assert described["retry_count"] == 0 and executions == ["not_a_number"], "terminal: not retried"
    # A run step's result is the same: its await raises TerminalError, which the handler may catch.
    measured = await server.ingress.post("/restate/call/Greeter/measure")
    assert measured.status_code == 200 and measured.json().startswith("caught: the value is inf"), measured.text


async def test_an_awakeable_payload_no_handler_could_read_as_json_is_400_and_changes_nothing(server) -> None:
    sent = await server.ingress.post("/restate/send/Greeter/wait_for_word")

    async def published_one() -> bool:
        return len(published) == 1

    await wait_until(published_one)
    for payload in [*NOT_JSON_NUMBERS, b"1" * 5000, b"[" * 100_000 + b"]" * 100_000]:
        refused = await server.ingress.post(f"/restate/awakeables/{published[0]}/resolve", content=payload)
        assert_ingress_error(refused, 400, "bad awakeable payload")
    resolved = await server.ingress.post(f"/restate/awakeables/{published[0]}/resolve", json="word")
    assert resolved.status_code == 202, resolved.text
    assert (await server.ingress.get(f"/restate/attach/{sent.json()['invocationId']}")).json() == "word"


async def test_admin_json_bodies_refuse_nan_too(server) -> None:
    response = await server.admin.post("/deployments", content=b'{"uri": "http://127.0.0.1:9", "force": NaN}')
    assert response.status_code == 400 and "NaN" in response.json()["message"], response.text


async def test_wrong_method_is_405(server) -> None:
    response = await server.ingress.delete("/restate/call/Greeter/greet")
    assert_ingress_error(response, 405, "method not allowed: DELETE; use GET, POST")
    assert "POST" in response.headers["allow"]
    send_with_get = await server.ingress.get("/restate/send/Greeter/greet")
    assert_ingress_error(send_with_get, 405, "method not allowed: GET; use POST")
    assert send_with_get.headers["allow"] == "POST"


async def test_a_body_over_the_limit_is_413(server) -> None:
    response = await server.ingress.post("/restate/call/Greeter/slow", content=b'"' + b"x" * (32 * 1024 * 1024) + b'"')
    assert_ingress_error(response, 413, "request body is larger than the limit", f"{32 * 1024 * 1024} bytes")


async def test_a_bad_delay_is_400(server) -> None:
    assert_ingress_error(await server.ingress.post("/restate/send/Greeter/nothing?delay=soon"), 400, "delay")
    assert_ingress_error(await server.ingress.post("/restate/call/Greeter/nothing?delay=1s"), 400, "delay")


async def test_a_bad_invocation_id_is_400_and_an_unknown_one_404(server) -> None:
    assert_ingress_error(await server.ingress.get("/restate/attach/not-an-id"), 400)
    unknown = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"
    assert_ingress_error(await server.ingress.get(f"/restate/output/{unknown}"), 404)
    assert_ingress_error(await server.ingress.get(f"/restate/attach/{unknown}"), 404)


async def test_the_server_keeps_serving_after_bad_requests(server) -> None:
    for _ in range(3):
        await server.ingress.post("/restate/call/Greeter/greet", content=b"\x00\x01")
        await server.ingress.put("/restate/call/Greeter/greet")
    response = await server.ingress.post("/restate/call/Greeter/greet", json={"name": "Ivy"})
    assert response.status_code == 200 and executions == ["Ivy"]


async def test_rejected_requests_create_no_invocation(server) -> None:
    await server.ingress.post("/restate/call/Greeter/greet", content=b"{bad")
    await server.ingress.post("/restate/send/Greeter/nothing?delay=never")
    count = await server.runtime.store.read(lambda txn: txn.count_invocations())
    assert count == 0
