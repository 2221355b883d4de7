"""The SDK runs over sdk/host.py's InvocationHost alone: a host made of nothing but the journal machine (no actor,
no storage, no endpoint) records commands, resolves futures and promises, and keeps one invocation's futures apart
from another's."""

from __future__ import annotations

import dataclasses
import random
import typing
from datetime import timedelta

import pytest

import durio
from durio import ids
from durio.journal import entries as e
from durio.journal.machine import InvocationMachine
from durio.sdk.context import context_for
from durio.sdk.definitions import Handler, handler_of
from durio.sdk.errors import TerminalError

signup = durio.Workflow("Signup")


@signup.main()
async def run(ctx: durio.WorkflowContext) -> str:
    return "unused: the tests drive the context by hand"


@dataclasses.dataclass(frozen=True)
class Invocation:
    id: str
    target: e.Target
    idempotency_key: str | None = None


class Blocked(Exception):
    """The journal cannot satisfy the wait yet (a real host would wait, or suspend)."""


class JournalOnlyHost:
    def __init__(self, handler: Handler, key: str) -> None:
        self.machine = InvocationMachine([e.Input(value=b"")])
        self.record = Invocation(ids.new_invocation_id(key), e.Target(handler.service_name, handler.name, key))
        self.handler = handler
        self.state: dict[str, bytes] = {}
        self.attempt_headers: dict[str, str] | None = None
        self.partial_state = False

    def now_ms(self) -> int:
        return 1_000

    def due_ms(self, delay_ms: int) -> int:
        return 1_000 + delay_ms

    def record_command(self, command: e.Entry) -> e.Entry:
        return self.machine.record(command)[0]

    def start_run(self, *args: typing.Any) -> None:
        raise AssertionError("these tests run no steps")

    async def wait(self, handles: typing.Collection[int], need_all: bool) -> None:
        if not self.machine.wait(handles, need_all):
            raise Blocked(sorted(handles))

    def kind_of(self, target: e.Target) -> str | None:
        return None

    def attempt_finished(self) -> typing.Any:
        return None

    def deliver(self, completion_id: int, result: e.Result) -> None:
        self.machine.mark_durable(self.machine.append_notification(e.Completion(completion_id=completion_id, result=result)) + 1)


def a_host(key: str = "alice") -> JournalOnlyHost:
    return JournalOnlyHost(handler_of(run), key)


async def test_a_promise_records_through_the_host_and_resolves_from_the_journal() -> None:
    host = a_host()
    ctx = typing.cast(durio.WorkflowContext, context_for(host))
    promise = ctx.promise("approval", type_hint=str)
    promise.resolve("yes")
    assert host.machine.entries[-1] == e.CompletePromise(key="approval", result=b'"yes"', completion_id=1)
    value = promise.value()
    assert host.machine.entries[-1] == e.GetPromise(key="approval", completion_id=2)
    assert not value.is_completed()
    with pytest.raises(Blocked):
        await value
    host.deliver(2, b'"granted"')
    assert await value == "granted"


async def test_a_call_handle_cancels_its_callee_through_the_host() -> None:
    host = a_host()
    call = context_for(host).generic_call("Mailer", "send", b"{}")
    callee = await call.invocation_id()
    assert ids.is_invocation_id(callee)
    await call.cancel_invocation()
    assert host.machine.entries[-1] == e.SendSignal(target_invocation_id=callee, signal_index=e.CANCEL_SIGNAL)


async def test_futures_of_two_invocations_cannot_be_combined() -> None:
    one, other = context_for(a_host("a")), context_for(a_host("b"))
    with pytest.raises(TerminalError, match="same handler context"):
        await durio.gather(one.sleep(timedelta(seconds=1)), other.sleep(timedelta(seconds=1)))


async def test_select_waits_through_the_host_for_whichever_completes_first() -> None:
    host = a_host()
    ctx = context_for(host)
    slow, fast = ctx.sleep(timedelta(seconds=9)), ctx.sleep(timedelta(seconds=1))
    with pytest.raises(Blocked):
        await durio.select(slow=slow, fast=fast)
    host.deliver(2, None)
    assert await durio.select(slow=slow, fast=fast) == ["fast", None]


def test_random_values_come_from_the_invocation_ids_seed() -> None:
    host = a_host()
    expected = random.Random(ids.random_seed(host.record.id)).random()
    assert context_for(host).random().random() == expected
    assert context_for(host).random().random() == expected  # a replay's context draws the same
