"""The official SDK's `restate.ext`: OpenTelemetry spans under the invocation's trace (durio.ext.tracing),
the Turnstile, and a clear ImportError for the asyncio agent integrations."""

from __future__ import annotations

import importlib
import pathlib
from datetime import timedelta

import pytest
import anyio
import anyio.abc

import durio
from durio.ext.turnstile import Turnstile
from tests.conftest import start_in_process

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from durio.ext.tracing import RestateTracerProvider  # noqa: E402

exporter = InMemorySpanExporter()
provider = otel_sdk.TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = RestateTracerProvider(provider).get_tracer("tests")
left_open: list = []

traced = durio.Service("Traced")


@traced.handler()
async def work(ctx: durio.Context) -> str:
    with tracer.start_as_current_span("before the sleep"):
        pass
    await ctx.sleep(timedelta(milliseconds=20))  # suspends (suspend_after_s=0): the rest runs after a replay
    with tracer.start_as_current_span("after the sleep"):
        pass
    left_open.append(tracer.start_span("never ended"))
    return "done"


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


async def test_spans_are_children_of_the_invocations_trace_once_each(
    nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path
) -> None:
    server = await start_in_process(nursery, [traced], data_dir, suspend_after_s=0.0)
    response = await server.ingress.post("/Traced/work", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert response.json() == "done"
    spans = exporter.get_finished_spans()
    # The replay after the sleep re-runs "before the sleep" as a no-op: each span is recorded once.
    assert sorted(span.name for span in spans) == ["after the sleep", "before the sleep", "never ended"]
    for span in spans:
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert format(span.parent.span_id, "016x") == PARENT_ID
    assert not left_open[-1].is_recording()  # ended when the attempt ended


def test_outside_a_handler_the_tracer_says_so() -> None:
    with pytest.raises(Exception, match="not in a Restate handler"):
        tracer.start_span("nowhere")


async def test_the_turnstile_lets_ids_through_in_order() -> None:
    turnstile = Turnstile(["a", "b", "c"])
    passed: list[str] = []

    async def take_turn(id_: str) -> None:
        await turnstile.wait_for(id_)
        passed.append(id_)
        turnstile.allow_next_after(id_)

    async with anyio.create_task_group() as nursery:
        for id_ in ("c", "b", "a"):
            nursery.start_soon(take_turn, id_)
    assert passed == ["a", "b", "c"]

    cancelled = Turnstile(["x", "y"])
    cancelled.cancel_all_after("x")
    with pytest.raises(durio.exceptions.SdkInternalException):
        await cancelled.wait_for("y")


@pytest.mark.parametrize("name", ["openai", "pydantic", "adk", "langchain"])
def test_the_asyncio_agent_integrations_say_why_they_are_missing(name: str) -> None:
    with pytest.raises(ImportError, match=f"restate.ext.{name}.*not ported its durable wrappers"):
        importlib.import_module(f"durio.ext.{name}")
