"""The ops test_transitions.py leaves out, on a real LMDB store: registering deployments, the retention timer's
purge, operator actions on invocations that have not started, what state commands write, the commands that
only leave a warning, and the name every op goes by."""

from __future__ import annotations

import pytest

from durio import ids
from durio.actors.effects import Sequences
from durio.actors.transitions import ControlOutcome, Transitions
from durio.journal import entries as e
from durio.storage.lmdb_store import LmdbStore
from durio.storage.records import EventKind, Status, TimerKey, TimerKind
from tests.unit.test_transitions import NOW, RETENTION_MS, commit, create, new_record, read, resolve, status_of, write


@pytest.fixture
def transitions() -> Transitions:
    return Transitions(Sequences(), resolve, default_retention_ms=RETENTION_MS)


def warnings_of(store: LmdbStore, invocation_id: str) -> list[str]:
    return [
        event["message"] for event in read(store, lambda txn: txn.events(invocation_id)) if event["kind"] == EventKind.WARNING
    ]


def test_saving_a_deployment_again_under_a_new_id_replaces_the_old_record(
    lmdb_store: LmdbStore, transitions: Transitions
) -> None:
    first = {"id": "dp_1", "uri": "http://127.0.0.1:9080"}
    assert commit(lmdb_store, transitions.save_deployment(first, None)).value is True
    again = {"id": "dp_2", "uri": "http://127.0.0.1:9080"}
    commit(lmdb_store, transitions.save_deployment(again, "dp_1"))
    assert read(lmdb_store, lambda txn: txn.deployments()) == [again]
    commit(lmdb_store, transitions.save_deployment(dict(again, uri="http://127.0.0.1:9081"), "dp_2"))
    assert read(lmdb_store, lambda txn: txn.deployments()) == [dict(again, uri="http://127.0.0.1:9081")], "same id: updated"


def test_the_retention_timer_purges_a_completed_invocation_and_is_consumed_even_when_nothing_is_left(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record = new_record()
    create(lmdb_store, transitions, record)
    done = commit(lmdb_store, transitions.complete(record.id, 1, e.Output(result=b'"r"'), NOW))
    (purge_timer,) = [t for t in done.effects.timers if t.kind == TimerKind.PURGE]
    assert purge_timer.due_ms == NOW + RETENTION_MS
    assert commit(lmdb_store, transitions.purge_expired(record.id, purge_timer)).value is ControlOutcome.DONE
    assert status_of(lmdb_store, record.id) is None and read(lmdb_store, lambda txn: txn.journal(record.id)) == []
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) == []
    stray = TimerKey(NOW, record.id, TimerKind.PURGE)
    write(lmdb_store, lambda txn: txn.put_timer(stray))
    assert commit(lmdb_store, transitions.purge_expired(record.id, stray)).value is ControlOutcome.NOT_FOUND
    assert read(lmdb_store, lambda txn: txn.timers_from(0, 10)) == [], "a timer whose invocation is gone is dropped"


def test_pause_and_resume_refuse_an_invocation_that_has_not_started(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    holder, queued = new_record("Counter", "k"), new_record("Counter", "k")
    create(lmdb_store, transitions, holder)
    create(lmdb_store, transitions, queued)
    assert commit(lmdb_store, transitions.pause(queued.id, NOW)).value is ControlOutcome.NOT_RUNNING
    assert commit(lmdb_store, transitions.resume(queued.id, NOW)).value is ControlOutcome.NOT_STARTED
    assert status_of(lmdb_store, queued.id) == Status.PENDING


def test_resume_retries_a_backing_off_invocation_at_once_and_wakes_a_suspended_one(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    backing_off, suspended = new_record(), new_record()
    create(lmdb_store, transitions, backing_off)
    create(lmdb_store, transitions, suspended)
    commit(
        lmdb_store,
        transitions.attempt_failed(backing_off.id, 1, {"message": "x", "code": 500, "at_ms": NOW}, NOW + 10_000, False, NOW),
    )
    commit(lmdb_store, transitions.suspend(suspended.id, ["sleep"], NOW))
    for record in (backing_off, suspended):
        resumed = commit(lmdb_store, transitions.resume(record.id, NOW + 1))
        assert resumed.value is ControlOutcome.RESUMED and [r.id for r, _ in resumed.effects.start] == [record.id]
        stored = read(lmdb_store, lambda txn: txn.get_invocation(record.id))
        assert (stored.status, stored.next_retry_ms, stored.modified_ms) == (Status.READY, 0, NOW + 1)


def test_a_delayed_invocation_is_started_once_and_only_from_scheduled(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record(execute_at_ms=NOW + 500)
    create(lmdb_store, transitions, record)
    timer = TimerKey(NOW + 500, record.id, TimerKind.START)
    assert commit(lmdb_store, transitions.start_scheduled(record.id, timer, NOW + 500)).value is True
    late = commit(lmdb_store, transitions.start_scheduled(record.id, timer, NOW + 600))
    assert late.value is False and late.effects.start == [], "a second firing starts nothing"


def test_state_commands_write_the_keys_state(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    record = new_record("Counter", "k")
    create(lmdb_store, transitions, record)
    commit(lmdb_store, transitions.append(record.id, 1, e.SetState(key="a", value=b"1"), NOW))
    commit(lmdb_store, transitions.append(record.id, 2, e.SetState(key="b", value=b"2"), NOW))
    commit(lmdb_store, transitions.append(record.id, 3, e.ClearState(key="a"), NOW))
    assert read(lmdb_store, lambda txn: txn.state_of("Counter", "k")) == {"b": b"2"}
    commit(lmdb_store, transitions.append(record.id, 4, e.ClearAllState(), NOW))
    assert read(lmdb_store, lambda txn: txn.state_of("Counter", "k")) == {}


def test_a_delayed_one_way_call_creates_its_callee_scheduled(lmdb_store: LmdbStore, transitions: Transitions) -> None:
    caller = new_record()
    create(lmdb_store, transitions, caller)
    callee_id = ids.new_invocation_id(None, NOW)
    send = e.OneWayCall(
        target=e.Target("Greeter", "greet"),
        value=b'"x"',
        callee_id=callee_id,
        invoke_at_ms=NOW + 1_000,
        invocation_id_completion_id=1,
    )
    applied = commit(lmdb_store, transitions.append(caller.id, 1, send, NOW))
    assert applied.effects.start == [] and applied.effects.timers == [TimerKey(NOW + 1_000, callee_id, TimerKind.START)]
    callee = read(lmdb_store, lambda txn: txn.get_invocation(callee_id))
    assert (callee.status, callee.caller_id) == (Status.SCHEDULED, caller.id)


def test_commands_that_cannot_act_leave_a_warning_in_the_invocations_history_and_change_nothing(
    lmdb_store: LmdbStore,
    transitions: Transitions,
) -> None:
    record, other = new_record(), new_record()
    create(lmdb_store, transitions, record)
    create(lmdb_store, transitions, other)
    missing = ids.new_invocation_id(None, NOW)
    commands = [
        e.CompleteAwakeable(awakeable_id="not-an-awakeable", result=b"1"),
        e.CompleteAwakeable(awakeable_id=ids.awakeable_id(missing, e.FIRST_AWAKEABLE_SIGNAL), result=b"1"),
        e.SendSignal(target_invocation_id=other.id, signal_index=e.CANCEL_SIGNAL + 1, result=None),
        e.SendNamedSignal(target_invocation_id=missing, signal_name="go", result=b"1"),
    ]
    for index, command in enumerate(commands, start=1):
        applied = commit(lmdb_store, transitions.append(record.id, index, command, NOW))
        assert applied.value is True and applied.effects.deliver == [], command
    warnings = warnings_of(lmdb_store, record.id)
    assert len(warnings) == 4
    assert warnings[1].endswith("was not completed: not found")
    assert "reserved for built-in signals" in warnings[2] and "no such invocation" in warnings[3]
    assert read(lmdb_store, lambda txn: txn.outbox_of(other.id)) == [] and status_of(lmdb_store, other.id) == Status.READY


def test_every_op_is_named_after_its_transitions_method(transitions: Transitions) -> None:
    """Whatever section builds an op, it goes by `Transitions.<verb>` (tests pick ops out of a batch by it)."""
    timer = TimerKey(NOW, "inv", TimerKind.START)
    record = new_record()
    built = {
        "create": transitions.create(record, e.Input(ts=NOW, value=b"")),
        "start_scheduled": transitions.start_scheduled(record.id, timer, NOW),
        "append": transitions.append(record.id, 1, e.ClearAllState(), NOW),
        "discard_message": transitions.discard_message(record.id, 1, None),
        "complete_awakeable": transitions.complete_awakeable("x", b""),
        "complete": transitions.complete(record.id, 1, e.Output(result=b""), NOW),
        "fail_unreadable": transitions.fail_unreadable(record.id, "x", NOW),
        "suspend": transitions.suspend(record.id, [], NOW),
        "attempt_failed": transitions.attempt_failed(record.id, 1, {}, NOW, False, NOW),
        "running_again": transitions.running_again(record.id, NOW),
        "cancel": transitions.cancel(record.id, NOW),
        "kill": transitions.kill(record.id, NOW),
        "pause": transitions.pause(record.id, NOW),
        "resume": transitions.resume(record.id, NOW),
        "purge": transitions.purge(record.id),
        "purge_expired": transitions.purge_expired(record.id, timer),
        "apply_messages": transitions.apply_messages(0),
        "save_deployment": transitions.save_deployment({"id": "dp"}, None),
    }
    assert {verb: op.__qualname__ for verb, op in built.items()} == {verb: f"Transitions.{verb}.<locals>.op" for verb in built}
