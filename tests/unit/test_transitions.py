"""Durable transitions as ops on a real LMDB store: what each one writes, refuses and asks the runtime to do.

Each op is committed through `LmdbStore.commit_batch`, the writer's own path into storage, so an op that
raises is rolled back exactly as in production and its outcome is an `OpFailed`.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest

from durio import ids
from durio.actors.effects import Applied, Sequences
from durio.actors.transitions import (
    CANCELLED,
    KILLED,
    STALE_JOURNAL,
    CompleteSignalOutcome,
    ControlOutcome,
    JournalOutOfStep,
    NotKeyHolder,
    TargetInfo,
    Transitions,
)
from durio.journal import entries as e
from durio.partitions import PartitionTable
from durio.storage.lmdb_store import LmdbStore, OpFailed
from durio.storage.records import InvocationRecord, ReplyTo, Status, TimerKey, TimerKind
from durio.storage.txn import Txn

NOW = 1_000_000
RETENTION_MS = 60_000
HANDLER_KINDS = {"Greeter": None, "Counter": "exclusive", "Signup": "workflow"}


def resolve(target: e.Target) -> TargetInfo | None:
    kind = HANDLER_KINDS.get(target.service, "missing")
    return None if kind == "missing" else TargetInfo(kind, RETENTION_MS)


@pytest.fixture
def transitions() -> Transitions:
    return Transitions(Sequences(), resolve, default_retention_ms=RETENTION_MS)


def commit(store: LmdbStore, op: typing.Callable[[Txn], Applied]) -> Applied:
    (outcome,) = store.commit_batch([op])
    assert isinstance(outcome, Applied), f"the op failed: {outcome!r}"
    return outcome


def refused(store: LmdbStore, op: typing.Callable[[Txn], Applied]) -> BaseException:
    (outcome,) = store.commit_batch([op])
    assert isinstance(outcome, OpFailed), f"the op was not refused: {outcome!r}"
    return outcome.error


def write(store: LmdbStore, fn: typing.Callable[[Txn], None]) -> None:
    """Set up storage directly, as an earlier transition would have left it."""
    (outcome,) = store.commit_batch([fn])
    assert not isinstance(outcome, OpFailed), outcome


def read(store: LmdbStore, fn: typing.Callable[[Txn], typing.Any]) -> typing.Any:
    return store.read(fn)


def new_record(
    service: str = "Greeter", key: str | None = None, handler: str = "greet", **fields: typing.Any
) -> InvocationRecord:
    kind = HANDLER_KINDS[service]
    invocation_id = ids.workflow_run_id(service, key) if kind == "workflow" and key else ids.new_invocation_id(key, NOW)
    return InvocationRecord(
        id=invocation_id,
        target=e.Target(service, handler, key),
        handler_kind=kind,
        status=Status.READY,
        created_ms=NOW,
        modified_ms=NOW,
        **fields,
    )


def create(
    store: LmdbStore, transitions: Transitions, record: InvocationRecord, value: bytes = b'"in"', reply_to: ReplyTo | None = None
) -> Applied:
    return commit(store, transitions.create(record, e.Input(ts=NOW, value=value), reply_to))


def status_of(store: LmdbStore, invocation_id: str) -> str | None:
    record = read(store, lambda txn: txn.get_invocation(invocation_id))
    return None if record is None else record.status


# ---------------------------------------------------------------- creating


def test_create_stores_the_record_and_its_input_and_starts_it(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record()
    applied = create(lmdb_store, transitions, record)
    assert applied.value.created
    assert status_of(lmdb_store, record.id) == Status.READY
    assert read(lmdb_store, lambda txn: txn.journal(record.id)) == [e.Input(ts=NOW, value=b'"in"')]
    assert [r.id for r, _ in applied.effects.start] == [record.id]
    assert applied.effects.created == 1


def test_creating_an_existing_id_again_creates_nothing_and_answers_the_stored_record(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record, b'"first"')
    applied = create(lmdb_store, transitions, dataclasses.replace(record, status=Status.READY), b'"second"')
    assert not applied.value.created
    assert applied.value.record.id == record.id
    assert applied.effects.created == 0 and applied.effects.start == []
    assert read(lmdb_store, lambda txn: txn.journal(record.id)) == [e.Input(ts=NOW, value=b'"first"')]


def test_a_caller_attaching_to_an_existing_completed_id_is_answered_with_its_result(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    callee, caller = new_record(), new_record()
    create(lmdb_store, transitions, caller)
    create(lmdb_store, transitions, callee)
    commit(lmdb_store, transitions.complete(callee.id, 1, e.Output(result=b'"done"'), NOW))
    applied = create(lmdb_store, transitions, callee, reply_to=ReplyTo(caller.id, 7))
    assert not applied.value.created
    reply = e.Completion(completion_id=7, result=b'"done"')
    assert [(target, note) for target, _, note in applied.effects.deliver] == [(caller.id, reply)]
    assert [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(caller.id))] == [reply]


def test_a_delayed_invocation_is_scheduled_with_a_start_timer_and_starts_when_due(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record(execute_at_ms=NOW + 5_000)
    applied = create(lmdb_store, transitions, record)
    timer = TimerKey(NOW + 5_000, record.id, TimerKind.START)
    assert status_of(lmdb_store, record.id) == Status.SCHEDULED
    assert applied.effects.start == [] and applied.effects.timers == [timer]
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) == [timer]

    started = commit(lmdb_store, transitions.start_scheduled(record.id, timer, NOW + 5_000))
    assert started.value is True
    assert status_of(lmdb_store, record.id) == Status.READY
    assert [r.id for r, _ in started.effects.start] == [record.id]
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) == []
    assert commit(lmdb_store, transitions.start_scheduled(record.id, timer, NOW + 5_000)).value is False


# ---------------------------------------------------------------- a key's inbox


def test_exclusive_invocations_on_one_key_queue_in_its_inbox_behind_the_holder(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    write(lmdb_store, lambda txn: txn.set_state("Counter", "k", "count", b"41"))
    first, second = new_record("Counter", "k"), new_record("Counter", "k")
    took_key = create(lmdb_store, transitions, first)
    queued = create(lmdb_store, transitions, second)
    assert status_of(lmdb_store, first.id) == Status.READY
    assert took_key.effects.fresh_holders == {first.id: {"count": b"41"}}
    assert status_of(lmdb_store, second.id) == Status.PENDING
    assert queued.effects.start == [] and [r.id for r in queued.effects.enqueue] == [second.id]
    assert [i for _, i in read(lmdb_store, lambda txn: txn.inbox("Counter", "k"))] == [first.id, second.id]
    other_key = create(lmdb_store, transitions, new_record("Counter", "other"))
    assert other_key.effects.enqueue == [] and len(other_key.effects.start) == 1


def test_completing_the_key_holder_leaves_the_inbox_and_admits_the_next(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    first, second, third = (new_record("Counter", "k") for _ in range(3))
    for record in (first, second, third):
        create(lmdb_store, transitions, record)
    applied = commit(lmdb_store, transitions.complete(first.id, 1, e.Output(result=b"1"), NOW))
    assert [r.id for r in applied.effects.released] == [first.id]
    assert [r.id for r, _ in applied.effects.start] == [second.id]
    assert status_of(lmdb_store, second.id) == Status.READY
    assert status_of(lmdb_store, third.id) == Status.PENDING, "only the next one is admitted"
    assert [i for _, i in read(lmdb_store, lambda txn: txn.inbox("Counter", "k"))] == [second.id, third.id]


def test_a_write_by_an_invocation_that_does_not_hold_its_key_is_refused(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    holder, waiting = new_record("Counter", "k"), new_record("Counter", "k")
    create(lmdb_store, transitions, holder)
    create(lmdb_store, transitions, waiting)
    error = refused(lmdb_store, transitions.append(waiting.id, 1, e.SetState(key="count", value=b"1"), NOW))
    assert isinstance(error, NotKeyHolder)
    assert isinstance(refused(lmdb_store, transitions.complete(waiting.id, 1, e.Output(result=b"x"), NOW)), NotKeyHolder)
    assert read(lmdb_store, lambda txn: txn.get_state("Counter", "k", "count")) is None
    assert len(read(lmdb_store, lambda txn: txn.journal(waiting.id))) == 1
    commit(lmdb_store, transitions.append(holder.id, 1, e.SetState(key="count", value=b"1"), NOW))
    assert read(lmdb_store, lambda txn: txn.get_state("Counter", "k", "count")) == b"1"


# ---------------------------------------------------------------- journal writes


def test_an_append_that_does_not_extend_the_journal_by_one_is_out_of_step(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    run = e.Run(name="pay", completion_id=1)
    assert isinstance(refused(lmdb_store, transitions.append(record.id, 2, run, NOW)), JournalOutOfStep)  # a gap
    assert isinstance(refused(lmdb_store, transitions.append(record.id, 0, run, NOW)), JournalOutOfStep)  # overwrite
    assert read(lmdb_store, lambda txn: txn.journal(record.id)) == [e.Input(ts=NOW, value=b'"in"')]
    assert commit(lmdb_store, transitions.append(record.id, 1, run, NOW)).value is True
    assert read(lmdb_store, lambda txn: txn.journal(record.id))[1] == run


def test_a_refused_append_rolls_back_the_message_it_would_have_consumed(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    note = e.Completion(completion_id=1, result=b"1")
    write(lmdb_store, lambda txn: txn.put_outbox(record.id, 99, note))
    refused(lmdb_store, transitions.append(record.id, 5, note, NOW, outbox_seq=99))
    assert read(lmdb_store, lambda txn: txn.outbox_of(record.id)) == [(99, note)]
    commit(lmdb_store, transitions.append(record.id, 1, note, NOW, outbox_seq=99))
    assert read(lmdb_store, lambda txn: txn.outbox_of(record.id)) == []


def test_a_notification_wakes_a_suspended_invocation(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    commit(lmdb_store, transitions.append(record.id, 1, e.Sleep(wake_up_ms=NOW + 10, completion_id=1), NOW))
    assert commit(lmdb_store, transitions.suspend(record.id, ["sleep"], NOW, journal_length=2)).value is True
    assert status_of(lmdb_store, record.id) == Status.SUSPENDED
    commit(lmdb_store, transitions.append(record.id, 2, e.Completion(completion_id=1), NOW + 10))
    woken = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
    assert woken.status == Status.READY and woken.awaiting == []


def test_a_sleep_arms_a_wake_timer(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    applied = commit(lmdb_store, transitions.append(record.id, 1, e.Sleep(wake_up_ms=NOW + 10, completion_id=3), NOW))
    timer = TimerKey(NOW + 10, record.id, TimerKind.WAKE, 3)
    assert applied.effects.timers == [timer]
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) == [timer]


def test_suspending_is_refused_with_stale_journal_when_storage_holds_entries_the_actor_has_not_seen(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    commit(lmdb_store, transitions.append(record.id, 1, e.Run(name="a", completion_id=1), NOW))
    commit(lmdb_store, transitions.append(record.id, 2, e.Completion(completion_id=1, result=b"1"), NOW))
    applied = commit(lmdb_store, transitions.suspend(record.id, ["run a"], NOW, journal_length=2))
    assert applied.value == STALE_JOURNAL
    assert status_of(lmdb_store, record.id) == Status.READY
    assert commit(lmdb_store, transitions.suspend(record.id, ["run a"], NOW, journal_length=3)).value is True
    suspended = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
    assert suspended.status == Status.SUSPENDED and suspended.awaiting == ["run a"]


def test_a_call_creates_its_callee_and_the_callees_completion_reaches_the_caller_through_its_outbox(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    caller = new_record()
    create(lmdb_store, transitions, caller)
    callee_id = ids.new_invocation_id(None, NOW)
    call = e.Call(
        target=e.Target("Greeter", "greet"), value=b'"x"', completion_id=2, invocation_id_completion_id=1, callee_id=callee_id
    )
    applied = commit(lmdb_store, transitions.append(caller.id, 1, call, NOW))
    assert [r.id for r, _ in applied.effects.start] == [callee_id]
    callee = read(lmdb_store, lambda txn: txn.get_invocation(callee_id))
    assert callee.caller_id == caller.id and callee.status == Status.READY
    assert read(lmdb_store, lambda txn: txn.journal(callee_id))[0].value == b'"x"'

    done = commit(lmdb_store, transitions.complete(callee_id, 1, e.Output(result=b'"hi"'), NOW + 1))
    reply = e.Completion(completion_id=2, result=b'"hi"')
    assert [(target, note) for target, _, note in done.effects.deliver] == [(caller.id, reply)]
    assert done.effects.completed == [(callee_id, b'"hi"')]
    assert [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(caller.id))] == [reply]
    purge = TimerKey(NOW + 1 + RETENTION_MS, callee_id, TimerKind.PURGE)
    assert purge in read(lmdb_store, lambda txn: txn.timers_from(0, 10))


def test_a_call_to_a_target_that_does_not_exist_is_answered_with_404(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    caller = new_record()
    create(lmdb_store, transitions, caller)
    call = e.Call(
        target=e.Target("Nowhere", "x"),
        value=b"",
        completion_id=2,
        invocation_id_completion_id=1,
        callee_id=ids.new_invocation_id(None, NOW),
    )
    applied = commit(lmdb_store, transitions.append(caller.id, 1, call, NOW))
    assert applied.effects.start == [] and applied.effects.created == 0
    ((target, _, note),) = applied.effects.deliver
    assert target == caller.id and isinstance(note.result, e.Failure) and note.result.code == 404
    assert "Nowhere/x" in note.result.message


def test_an_awakeable_completes_once(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    awakeable = ids.awakeable_id(record.id, e.FIRST_AWAKEABLE_SIGNAL)
    assert commit(lmdb_store, transitions.complete_awakeable(awakeable, b'"yes"')).value is CompleteSignalOutcome.DONE
    assert (
        commit(lmdb_store, transitions.complete_awakeable(awakeable, b'"again"')).value is CompleteSignalOutcome.ALREADY_COMPLETED
    )
    signal = e.Signal(signal_index=e.FIRST_AWAKEABLE_SIGNAL, result=b'"yes"')
    assert [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(record.id))] == [signal]


# ---------------------------------------------------------------- cancel, kill, purge


def test_cancelling_a_pending_invocation_ends_it_at_once_and_leaves_the_holder_alone(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    holder, waiting = new_record("Counter", "k"), new_record("Counter", "k")
    create(lmdb_store, transitions, holder)
    create(lmdb_store, transitions, waiting)
    applied = commit(lmdb_store, transitions.cancel(waiting.id, NOW))
    assert applied.value is ControlOutcome.DONE
    cancelled = read(lmdb_store, lambda txn: txn.get_invocation(waiting.id))
    assert cancelled.status == Status.COMPLETED and cancelled.result == CANCELLED
    assert [i for _, i in read(lmdb_store, lambda txn: txn.inbox("Counter", "k"))] == [holder.id]
    assert applied.effects.start == [], "the holder keeps the key"
    assert commit(lmdb_store, transitions.cancel(waiting.id, NOW)).value is ControlOutcome.COMPLETED
    assert commit(lmdb_store, transitions.cancel(ids.new_invocation_id(None, NOW), NOW)).value is ControlOutcome.NOT_FOUND


def test_cancelling_a_running_invocation_sends_one_cancel_signal(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    assert commit(lmdb_store, transitions.cancel(record.id, NOW)).value is ControlOutcome.SIGNALLED
    again = commit(lmdb_store, transitions.cancel(record.id, NOW))
    assert again.value is ControlOutcome.SIGNALLED and again.effects.deliver == []
    assert [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(record.id))] == [
        e.Signal(signal_index=e.CANCEL_SIGNAL, result=None)
    ]
    assert status_of(lmdb_store, record.id) == Status.READY, "the handler unwinds itself"


def test_kill_recurses_into_unanswered_callees_only(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    parent = new_record()
    create(lmdb_store, transitions, parent)
    child, grandchild, answered = (ids.new_invocation_id(None, NOW) for _ in range(3))

    def call(completion_id: int, callee_id: str) -> e.Call:
        return e.Call(
            target=e.Target("Greeter", "greet"),
            value=b"",
            completion_id=completion_id,
            invocation_id_completion_id=completion_id + 100,
            callee_id=callee_id,
        )

    commit(lmdb_store, transitions.append(parent.id, 1, call(1, child), NOW))
    commit(lmdb_store, transitions.append(child, 1, call(1, grandchild), NOW))
    commit(lmdb_store, transitions.append(parent.id, 2, call(2, answered), NOW))
    commit(lmdb_store, transitions.complete(answered, 1, e.Output(result=b'"ok"'), NOW))
    commit(lmdb_store, transitions.append(parent.id, 3, e.Completion(completion_id=2, result=b'"ok"'), NOW))

    applied = commit(lmdb_store, transitions.kill(parent.id, NOW))
    assert applied.value is ControlOutcome.DONE
    assert sorted(applied.effects.stop) == sorted([parent.id, child, grandchild])
    for invocation_id in (parent.id, child, grandchild):
        killed = read(lmdb_store, lambda txn: txn.get_invocation(invocation_id))
        assert killed.status == Status.COMPLETED and killed.result == KILLED
    assert read(lmdb_store, lambda txn: txn.get_invocation(answered)).result == b'"ok"'
    # The parent's journal is sealed: its actor's next write is fenced off.
    assert commit(lmdb_store, transitions.append(parent.id, 4, e.Run(name="late", completion_id=3), NOW)).value is False
    assert len(read(lmdb_store, lambda txn: txn.journal(parent.id))) == 4


def test_purge_forgets_a_completed_invocation_and_refuses_an_unfinished_one(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    assert commit(lmdb_store, transitions.purge(record.id)).value is ControlOutcome.NOT_COMPLETED
    commit(lmdb_store, transitions.complete(record.id, 1, e.Output(result=b"1"), NOW))
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) != []
    assert commit(lmdb_store, transitions.purge(record.id)).value is ControlOutcome.DONE
    assert read(lmdb_store, lambda txn: txn.get_invocation(record.id)) is None
    assert read(lmdb_store, lambda txn: txn.journal(record.id)) == []
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) == [], "the retention timer goes with it"
    assert commit(lmdb_store, transitions.purge(record.id)).value is ControlOutcome.NOT_FOUND


def test_purging_a_workflow_run_clears_the_workflows_state_and_promises(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    run = new_record("Signup", "alice", handler="run")
    create(lmdb_store, transitions, run)
    commit(lmdb_store, transitions.append(run.id, 1, e.SetState(key="step", value=b"1"), NOW))
    commit(lmdb_store, transitions.append(run.id, 2, e.CompletePromise(key="link", result=b'"y"', completion_id=1), NOW))
    assert read(lmdb_store, lambda txn: txn.promises_of("Signup", "alice")) != {}
    commit(lmdb_store, transitions.complete(run.id, 3, e.Output(result=b"ok"), NOW))
    assert commit(lmdb_store, transitions.purge(run.id)).value is ControlOutcome.DONE
    assert read(lmdb_store, lambda txn: txn.state_of("Signup", "alice")) == {}
    assert read(lmdb_store, lambda txn: txn.promises_of("Signup", "alice")) == {}


# ---------------------------------------------------------------- promises, attach, redeliveries


def test_a_promise_awaited_before_it_is_completed_answers_its_waiter_once_completed(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    run = new_record("Signup", "alice", handler="run")
    create(lmdb_store, transitions, run)
    waiting = commit(lmdb_store, transitions.append(run.id, 1, e.GetPromise(key="link", completion_id=1), NOW))
    assert waiting.effects.deliver == [], "nothing to answer yet"
    commit(lmdb_store, transitions.append(run.id, 2, e.PeekPromise(key="link", completion_id=2), NOW))
    completed = commit(
        lmdb_store, transitions.append(run.id, 3, e.CompletePromise(key="link", result=b'"y"', completion_id=3), NOW)
    )
    again = commit(lmdb_store, transitions.append(run.id, 4, e.CompletePromise(key="link", result=b'"z"', completion_id=4), NOW))
    notes = [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(run.id))]
    assert notes[0] == e.Completion(completion_id=2, result=None), "a peek before completion sees nothing"
    assert [note for _, _, note in completed.effects.deliver] == [
        e.Completion(completion_id=1, result=b'"y"'),
        e.Completion(completion_id=3, result=None),
    ]
    ((_, _, refusal),) = again.effects.deliver
    assert isinstance(refusal.result, e.Failure) and refusal.result.code == 409
    assert read(lmdb_store, lambda txn: txn.get_promise("Signup", "alice", "link")).result == b'"y"'


def test_attaching_to_a_running_invocation_is_answered_when_it_completes(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    target, attacher = new_record(), new_record()
    create(lmdb_store, transitions, target)
    create(lmdb_store, transitions, attacher)
    output = commit(
        lmdb_store,
        transitions.append(attacher.id, 1, e.GetInvocationOutput(target_invocation_id=target.id, completion_id=1), NOW),
    )
    assert [note for _, _, note in output.effects.deliver] == [e.Completion(completion_id=1, result=None)], "not ready: void"
    attached = commit(
        lmdb_store, transitions.append(attacher.id, 2, e.AttachInvocation(target_invocation_id=target.id, completion_id=2), NOW)
    )
    assert attached.effects.deliver == []
    done = commit(lmdb_store, transitions.complete(target.id, 1, e.Output(result=b'"r"'), NOW))
    assert [(to, note) for to, _, note in done.effects.deliver] == [(attacher.id, e.Completion(completion_id=2, result=b'"r"'))]


def test_a_redelivered_message_is_discarded_only_when_the_stored_journal_holds_its_notification(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    note = e.Completion(completion_id=1, result=b"1")
    write(lmdb_store, lambda txn: txn.put_outbox(record.id, 5, note))
    commit(lmdb_store, transitions.discard_message(record.id, 5, None, handle=1))
    assert read(lmdb_store, lambda txn: txn.outbox_of(record.id)) == [(5, note)], "the journal lacks it: kept"
    commit(lmdb_store, transitions.append(record.id, 1, note, NOW))
    commit(lmdb_store, transitions.discard_message(record.id, 5, None, handle=1))
    assert read(lmdb_store, lambda txn: txn.outbox_of(record.id)) == []


# ---------------------------------------------------------------- retries and operator actions


def test_a_failed_attempt_is_remembered_and_pauses_when_retries_are_exhausted(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    failure = {"message": "down", "code": 500, "at_ms": NOW}
    assert commit(lmdb_store, transitions.attempt_failed(record.id, 1, failure, NOW + 100, False, NOW)).value is True
    backing_off = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
    assert (backing_off.status, backing_off.retry_count, backing_off.next_retry_ms) == (Status.BACKING_OFF, 1, NOW + 100)
    assert commit(lmdb_store, transitions.running_again(record.id, NOW + 100)).value is True
    assert status_of(lmdb_store, record.id) == Status.READY
    assert commit(lmdb_store, transitions.running_again(record.id, NOW + 100)).value is False, "only from backing-off"
    commit(lmdb_store, transitions.attempt_failed(record.id, 2, failure, 0, True, NOW))
    paused = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
    assert (paused.status, paused.paused_reason) == (Status.PAUSED, "retries exhausted")
    assert [event["kind"] for event in read(lmdb_store, lambda txn: txn.events(record.id))] == ["attempt_failed"] * 2


def test_an_invocation_still_queued_for_its_key_cannot_record_a_failed_attempt_or_suspend(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    holder, waiting = new_record("Counter", "k"), new_record("Counter", "k")
    create(lmdb_store, transitions, holder)
    create(lmdb_store, transitions, waiting)
    failure = {"message": "x", "code": 500, "at_ms": NOW}
    assert commit(lmdb_store, transitions.attempt_failed(waiting.id, 1, failure, NOW, False, NOW)).value is False
    assert commit(lmdb_store, transitions.suspend(waiting.id, [], NOW)).value is False
    assert status_of(lmdb_store, waiting.id) == Status.PENDING


def test_pause_stops_a_running_invocation_and_resume_runs_it_again(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    paused = commit(lmdb_store, transitions.pause(record.id, NOW))
    assert paused.value is ControlOutcome.PAUSED and paused.effects.stop == [record.id]
    assert commit(lmdb_store, transitions.pause(record.id, NOW)).value is ControlOutcome.UNCHANGED
    resumed = commit(lmdb_store, transitions.resume(record.id, NOW))
    assert resumed.value is ControlOutcome.RESUMED and [r.id for r, _ in resumed.effects.start] == [record.id]
    stored = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
    assert (stored.status, stored.paused_reason) == (Status.READY, None)


def test_an_invocation_whose_journal_cannot_be_read_ends_with_a_500_naming_the_reason(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    caller, record = new_record(), new_record()
    create(lmdb_store, transitions, caller)
    create(lmdb_store, transitions, record, reply_to=ReplyTo(caller.id, 4))
    applied = commit(lmdb_store, transitions.fail_unreadable(record.id, "entry 1 is corrupt", NOW))
    assert applied.value is True
    failed = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
    assert failed.status == Status.COMPLETED
    assert failed.result == e.Failure(500, "durio cannot read this invocation's journal: entry 1 is corrupt")
    assert [(to, note.result) for to, _, note in applied.effects.deliver] == [(caller.id, failed.result)]
    assert commit(lmdb_store, transitions.fail_unreadable(record.id, "again", NOW)).value is False


# ---------------------------------------------------------------- partitions of other workers


def two_workers() -> tuple[Transitions, Transitions]:
    """Worker 0 and worker 1 of two, over two partitions, sharing one sequence counter as one store does."""
    sequences = Sequences()
    return (
        Transitions(sequences, resolve, RETENTION_MS, partitions=PartitionTable.for_worker(2, 0, 2)),
        Transitions(sequences, resolve, RETENTION_MS, partitions=PartitionTable.for_worker(2, 1, 2)),
    )


def id_in_partition(partition: int) -> str:
    table = PartitionTable.single(2)
    return next(
        invocation_id
        for invocation_id in (ids.new_invocation_id(f"k{n}", NOW) for n in range(10_000))
        if table.of_id(invocation_id) == partition
    )


def greeter_record(invocation_id: str) -> InvocationRecord:
    return InvocationRecord(
        id=invocation_id,
        target=e.Target("Greeter", "greet"),
        handler_kind=None,
        status=Status.READY,
        created_ms=NOW,
        modified_ms=NOW,
    )


def test_a_call_into_another_workers_partition_is_a_message_its_owner_applies_once(lmdb_store: LmdbStore) -> None:
    worker0, worker1 = two_workers()
    caller, callee_id = greeter_record(id_in_partition(0)), id_in_partition(1)
    create(lmdb_store, worker0, caller)
    call = e.Call(
        target=e.Target("Greeter", "greet"), value=b'"x"', completion_id=2, invocation_id_completion_id=1, callee_id=callee_id
    )
    posted = commit(lmdb_store, worker0.append(caller.id, 1, call, NOW))
    assert posted.effects.messages == [1] and posted.effects.start == []
    assert read(lmdb_store, lambda txn: txn.get_invocation(callee_id)) is None, "worker 0 does not create it"
    assert len(read(lmdb_store, lambda txn: txn.messages_for(1, 10))) == 1

    applied = commit(lmdb_store, worker1.apply_messages(1))
    assert applied.value == 1 and [r.id for r, _ in applied.effects.start] == [callee_id]
    assert read(lmdb_store, lambda txn: txn.get_invocation(callee_id)).caller_id == caller.id
    assert read(lmdb_store, lambda txn: txn.messages_for(1, 10)) == []
    assert commit(lmdb_store, worker1.apply_messages(1)).value == 0, "applied once"

    commit(lmdb_store, worker1.complete(callee_id, 1, e.Output(result=b'"hi"'), NOW))
    assert [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(caller.id))] == [
        e.Completion(completion_id=2, result=b'"hi"')
    ]


def test_kill_and_cancel_of_another_workers_invocations_travel_as_messages(lmdb_store: LmdbStore) -> None:
    worker0, worker1 = two_workers()
    parent, child = greeter_record(id_in_partition(0)), greeter_record(id_in_partition(1))
    create(lmdb_store, worker0, parent)
    commit(lmdb_store, worker1.create(child, e.Input(ts=NOW)))
    call = e.Call(
        target=e.Target("Greeter", "greet"), value=b"", completion_id=2, invocation_id_completion_id=1, callee_id=child.id
    )
    write(lmdb_store, lambda txn: txn.put_entry(parent.id, 1, call))  # as if the child had been created through a message

    cancelled = commit(lmdb_store, worker0.cancel(child.id, NOW))
    assert cancelled.value is ControlOutcome.SIGNALLED and cancelled.effects.messages == [1]
    assert read(lmdb_store, lambda txn: txn.outbox_of(child.id)) == [], "worker 0 leaves the child's outbox alone"
    killed = commit(lmdb_store, worker0.kill(parent.id, NOW))
    assert killed.effects.stop == [parent.id] and killed.effects.messages == [1]
    assert status_of(lmdb_store, child.id) == Status.READY

    applied = commit(lmdb_store, worker1.apply_messages(1))
    assert applied.value == 2
    assert [note for _, note in read(lmdb_store, lambda txn: txn.outbox_of(child.id))] == [
        e.Signal(signal_index=e.CANCEL_SIGNAL, result=None)
    ]
    killed_child = read(lmdb_store, lambda txn: txn.get_invocation(child.id))
    assert killed_child.status == Status.COMPLETED and killed_child.result == KILLED
