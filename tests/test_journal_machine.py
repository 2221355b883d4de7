"""The invocation state machine, as plain function calls: no Trio, no LMDB, no sockets."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from durio.journal import entries as e
from durio.journal.machine import InvocationMachine, JournalMismatch


def fresh() -> InvocationMachine:
    return InvocationMachine([e.Input(value=b'"in"')])


def test_new_commands_are_appended_and_reported_new() -> None:
    machine = fresh()
    entry, new = machine.record(e.Run(name="pay", completion_id=machine.allocate_completion_id()))
    assert new
    assert machine.entries[1] is entry
    assert entry.completion_id == 1


def test_replay_returns_the_stored_command_with_its_results() -> None:
    stored_get = e.GetState(key="subscriptions", value=b'["Hulu"]')
    machine = InvocationMachine([e.Input(), stored_get, e.Run(name="pay", completion_id=1)])
    entry, new = machine.record(e.GetState(key="subscriptions", value=b"ignored on replay"))
    assert not new
    assert entry.value == b'["Hulu"]'
    entry, new = machine.record(e.Run(name="pay", completion_id=machine.allocate_completion_id()))
    assert not new
    assert not machine.replaying
    _, new = machine.record(e.Run(name="next", completion_id=machine.allocate_completion_id()))
    assert new


def test_a_different_command_on_replay_is_a_mismatch_naming_the_step() -> None:
    machine = InvocationMachine([e.Input(), e.Run(name="add-Hulu", completion_id=1)])
    with pytest.raises(JournalMismatch) as raised:
        machine.record(e.Run(name="add-Prime", completion_id=1))
    message = str(raised.value)
    assert "entry 1" in message
    assert "run 'add-Prime'" in message and "run 'add-Hulu'" in message


def test_a_different_kind_of_command_is_a_mismatch() -> None:
    machine = InvocationMachine([e.Input(), e.Sleep(wake_up_ms=5, completion_id=1)])
    with pytest.raises(JournalMismatch):
        machine.record(e.Run(name="x", completion_id=1))


def test_finishing_early_on_replay_is_a_mismatch() -> None:
    machine = InvocationMachine([e.Input(), e.Run(name="a", completion_id=1), e.Completion(completion_id=1, result=b"1")])
    with pytest.raises(JournalMismatch):
        machine.record(e.Output(result=b"done"))


def test_waiting_consumes_notifications_in_journal_order_and_stops_when_satisfied() -> None:
    # b completed before a in the original run; a select(a, b) must see b win on every replay.
    machine = InvocationMachine(
        [
            e.Input(),
            e.Run(name="a", completion_id=1),
            e.Run(name="b", completion_id=2),
            e.Completion(completion_id=2, result=b'"b"'),
            e.Completion(completion_id=1, result=b'"a"'),
        ]
    )
    machine.record(e.Run(name="a", completion_id=1))
    machine.record(e.Run(name="b", completion_id=2))
    assert machine.wait([1, 2], need_all=False)
    assert machine.is_completed(2)
    assert not machine.is_completed(1), "the later notification must stay invisible"
    assert machine.wait([1], need_all=True)
    assert machine.result(1) == b'"a"'


def test_notifications_past_the_durable_length_stay_invisible() -> None:
    machine = fresh()
    machine.record(e.Run(name="a", completion_id=machine.allocate_completion_id()))
    index = machine.append_notification(e.Completion(completion_id=1, result=b"1"))
    machine.mark_durable(index)  # everything before the notification, not the notification itself
    assert not machine.wait([1], need_all=True)
    machine.mark_durable(index + 1)
    assert machine.wait([1], need_all=True)


def test_a_cancel_signal_interrupts_a_wait_once() -> None:
    machine = fresh()
    machine.record(e.Sleep(wake_up_ms=10, completion_id=machine.allocate_completion_id()))
    machine.append_notification(e.Signal(signal_index=e.CANCEL_SIGNAL))
    machine.mark_durable(len(machine.entries))
    assert machine.wait([1], need_all=True)
    assert machine.take_cancellation()
    assert not machine.take_cancellation()
    assert not machine.wait([1], need_all=True)


def test_duplicate_notifications_are_recognised() -> None:
    machine = fresh()
    machine.append_notification(e.Completion(completion_id=1, result=b"x"))
    assert machine.has_notification(1)
    assert not machine.has_notification(2)
    assert machine.has_notification(e.signal_handle(17)) is False


def test_restart_replays_from_the_beginning() -> None:
    machine = fresh()
    machine.record(e.Run(name="a", completion_id=machine.allocate_completion_id()))
    machine.append_notification(e.Completion(completion_id=1, result=b"1"))
    machine.mark_durable(len(machine.entries))
    assert machine.wait([1], need_all=True)
    machine.restart()
    assert machine.replaying
    assert not machine.is_completed(1)
    assert machine.allocate_completion_id() == 1
    assert machine.allocate_signal_index() == e.FIRST_AWAKEABLE_SIGNAL


def test_wait_all_needs_every_handle() -> None:
    machine = fresh()
    for name in ("a", "b", "c"):
        machine.record(e.Run(name=name, completion_id=machine.allocate_completion_id()))
    for completion_id in (3, 1):
        machine.append_notification(e.Completion(completion_id=completion_id, result=b"0"))
    machine.mark_durable(len(machine.entries))
    assert not machine.wait([1, 2, 3], need_all=True)
    machine.append_notification(e.Completion(completion_id=2, result=b"0"))
    machine.mark_durable(len(machine.entries))
    assert machine.wait([1, 2, 3], need_all=True)


def test_a_cancellation_ahead_is_known_before_it_is_consumed() -> None:
    machine = InvocationMachine([e.Input(), e.Run(name="charge", completion_id=1), e.Signal(signal_index=e.CANCEL_SIGNAL)])
    machine.record(e.Run(name="charge", completion_id=machine.allocate_completion_id()))
    assert machine.cancellation_ahead() and not machine.cancellation_given
    assert machine.wait([1], need_all=True) and machine.take_cancellation()
    assert not machine.cancellation_ahead() and machine.cancellation_given
    machine.restart()
    assert machine.cancellation_ahead() and not machine.cancellation_given


def test_these_tests_run_without_trio_lmdb_or_sockets() -> None:
    """Every other test of this file, in a fresh interpreter where those modules cannot be imported."""
    blocked_then_run = f"""
import sys
import pytest  # for pytest.raises; it uses sockets itself, so it is imported before they are blocked
for name in ("trio", "lmdb", "hypercorn", "socket", "msgpack"):
    sys.modules[name] = None
import tests.test_journal_machine as suite
ran = [fn() for name, fn in sorted(vars(suite).items()) if name.startswith("test_") and name != "{sys._getframe().f_code.co_name}"]
print(len(ran))
"""
    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", blocked_then_run], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 10


def test_a_cancellation_replayed_reaches_only_the_calls_issued_before_it() -> None:
    """The compensation's own call, later in the journal, is not cancelled on replay (red-team B1)."""
    trip = e.Target("Trip", "book")
    refund = e.Target("Refund", "run")
    journal = [
        e.Input(),
        e.Call(target=trip, value=b"", completion_id=1, invocation_id_completion_id=2, callee_id="inv_trip"),
        e.Sleep(wake_up_ms=10, completion_id=3),
        e.Signal(signal_index=e.CANCEL_SIGNAL),
        # Written by the first run after it took the cancellation: cancel the trip, then compensate.
        e.SendSignal(target_invocation_id="inv_trip", signal_index=e.CANCEL_SIGNAL),
        e.Call(target=refund, value=b"", completion_id=4, invocation_id_completion_id=5, callee_id="inv_refund"),
    ]
    machine = InvocationMachine(journal)
    machine.record(e.Call(target=trip, value=b"", completion_id=1, invocation_id_completion_id=2))
    machine.record(e.Sleep(wake_up_ms=99, completion_id=3))
    assert machine.wait([3], need_all=False)
    assert machine.take_cancellation()
    assert [call.callee_id for call in machine.calls_to_cancel()] == ["inv_trip"]


def test_a_completed_call_is_not_cancelled() -> None:
    machine = fresh()
    machine.record(e.Call(target=e.Target("A", "a"), value=b"", completion_id=1, invocation_id_completion_id=2, callee_id="x"))
    machine.append_notification(e.Completion(completion_id=1, result=b"1"))
    machine.append_notification(e.Signal(signal_index=e.CANCEL_SIGNAL))
    machine.mark_durable(len(machine.entries))
    assert machine.wait([1], need_all=False)
    assert machine.wait([7], need_all=False)  # ended by the cancellation, not by handle 7
    assert machine.take_cancellation()
    assert machine.calls_to_cancel() == []
