"""OpenTelemetry traces from a real `durio serve` process, received by a real OTLP/HTTP receiver.

Trips (embedded) is a saga that calls Hotels (a remote deployment served by
hypercorn): reserve a flight, book a hotel, nap, pay (declined for good), then
cancel the hotel and undo the flight. Each ingress request is one trace with
one root, the calls continue it into the other service and over HTTP into the
deployment, and the compensations are child spans.
"""

from __future__ import annotations

import pathlib

import pytest
import anyio
import anyio.to_thread

from durio.telemetry import TracingConfigError, tracing_configured, tracing_from_environment
from tests.conftest import TEST_APPS
from tests.otlp_receiver import ReceivedSpan, running_receiver
from tests.remote_peers import hypercorn_deployment

TRIPS_APP = TEST_APPS / "traced_trips_app.py"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = by_name(spans, name)
    assert len(found) == 1, (name, [(s.name, s.span_id) for s in spans])
    return found[0]


async def test_a_saga_across_two_services_is_one_trace_per_request_with_its_compensations_as_children(
    server_process, tmp_path: pathlib.Path
) -> None:  # type: ignore[no-untyped-def]
    with running_receiver() as receiver:
        hotels = hypercorn_deployment("tests.apps.traced_hotels_app:app", tmp_path / "hotels.log")
        await hotels.start()
        try:
            server = server_process(
                TRIPS_APP,
                env={
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                    "OTEL_BSP_SCHEDULE_DELAY": "50",
                    "OTEL_SERVICE_NAME": "durio-test",
                },
            )
            await server.start()
            async with server.client(admin=True) as admin:
                registered = await admin.post("/deployments", json={"uri": hotels.url})
                assert registered.status_code == 201, registered.text
            async with server.client() as client:
                plain = await client.post("/restate/call/Trips/plan", json="lisbon")
                continued = await client.post(
                    "/restate/call/Trips/plan", json="porto", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
                )
            assert plain.status_code == continued.status_code == 402, plain.text
            spans = await anyio.to_thread.run_sync(lambda: receiver.wait_for(lambda s: len(by_name(s, "Trips/plan")) == 2))
            async with server.client(admin=True) as admin:
                described = (await admin.get(f"/invocations/{plain.headers['x-restate-id']}")).json()
                queried = (
                    await admin.post(
                        "/query", json={"query": "select id, trace_id from sys_invocation where target = 'Trips/plan'"}
                    )
                ).json()["rows"]
        finally:
            hotels.stop()

    assert {span.service_name for span in spans} == {"durio-test"}
    trips = {span.attributes["restate.invocation.id"]: span for span in by_name(spans, "Trips/plan")}
    root = trips[plain.headers["x-restate-id"]]
    trace = [span for span in spans if span.trace_id == root.trace_id]
    assert [span for span in trace if span.parent_span_id is None] == [root], "one root per ingress request"
    assert root.attributes["restate.invocation.target"] == "Trips/plan" and root.status_code == 2
    assert described["trace_id"] == root.trace_id
    assert {row["id"]: row["trace_id"] for row in queried}[root.attributes["restate.invocation.id"]] == root.trace_id

    children = {span.span_id: span for span in trace}

    def parent(span: ReceivedSpan) -> ReceivedSpan:
        assert span.parent_span_id in children, (span.name, "has no parent in the trace")
        return children[span.parent_span_id]

    trips_attempts = {s.span_id for s in trace if s.name == "attempt" and s.parent_span_id == root.span_id}
    assert trips_attempts
    for step in ("run reserve-flight", "run pay", "run undo-flight"):
        assert parent(one(trace, step)).span_id in trips_attempts, step
    assert one(trace, "run pay").status_code == 2
    for wait in ("call Hotels/book", "call Hotels/cancel", "sleep"):
        assert one(trace, wait).parent_span_id == root.span_id, wait

    # The calls continue the trace into Hotels, the compensation's call too.
    for handler, step in (("book", "run book-hotel"), ("cancel", "run cancel-hotel")):
        invocation = one(trace, f"Hotels/{handler}")
        assert invocation.parent_span_id in trips_attempts, handler
        attempts = {s.span_id for s in trace if s.name == "attempt" and s.parent_span_id == invocation.span_id}
        assert attempts and parent(one(trace, step)).span_id in attempts, step
    # The compensations, in reverse order: the hotel is cancelled, then the flight undone.
    assert one(trace, "run cancel-hotel").end_ns <= one(trace, "run undo-flight").start_ns
    assert one(trace, "run pay").end_ns <= one(trace, "Hotels/cancel").start_ns

    # The deployment's handler saw its own attempt's span as the traceparent of the request that carried it.
    [booked] = [e for e in described["journal"] if e["type"] == "call" and e["target"] == "Hotels/book"]
    book_attempts = {s.span_id for s in trace if s.name == "attempt" and s.parent_span_id == one(trace, "Hotels/book").span_id}
    assert booked["value"]["attempt_traceparent"] in {f"00-{root.trace_id}-{span_id}-01" for span_id in book_attempts}

    # A request that carries a traceparent: its invocation continues the client's trace, under the client's span.
    other = trips[continued.headers["x-restate-id"]]
    assert other.trace_id == CLIENT_TRACE and other.parent_span_id == CLIENT_SPAN
    assert {s.name for s in spans if s.trace_id == CLIENT_TRACE} >= {
        "Trips/plan",
        "Hotels/book",
        "Hotels/cancel",
        "run undo-flight",
        "run cancel-hotel",
    }


def test_tracing_is_off_unless_an_otlp_endpoint_is_configured() -> None:
    assert not tracing_configured({})
    assert tracing_from_environment({}) is None
    assert tracing_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not tracing_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"})
    with pytest.raises(TracingConfigError, match="grpc is not supported"):
        tracing_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


async def test_without_tracing_no_trace_id_is_claimed(server_process, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    server = server_process(TEST_APPS / "steps_app.py", env={"STEPS_LOG": str(tmp_path / "steps.log")})
    await server.start()
    async with server.client() as client:
        called = await client.post("/restate/call/Steps/run", json=0)
    assert called.status_code == 200, called.text
    async with server.client(admin=True) as admin:
        described = (await admin.get(f"/invocations/{called.headers['x-restate-id']}")).json()
        rows = (await admin.post("/query", json={"query": "select id, trace_id from sys_invocation"})).json()["rows"]
    assert "trace_id" not in described
    assert rows == [{"id": called.headers["x-restate-id"], "trace_id": None}]
