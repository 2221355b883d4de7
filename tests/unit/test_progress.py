"""The journal's "what next" verdicts for a waiting handler (durio.journal.progress), as plain function calls."""

from __future__ import annotations

from durio.journal import entries as e
from durio.journal import progress as p
from durio.journal.machine import InvocationMachine


def machine_with(*entries: e.Entry) -> InvocationMachine:
    machine = InvocationMachine([e.Input(value=b'"in"'), *entries])
    for entry in entries:  # the handler re-issues what the journal holds, up to its wait
        if entry.is_command:
            machine.record(entry)
    return machine


def call(completion_id: int, callee: str) -> e.Call:
    return e.Call(
        target=e.Target("Greeter", "greet"),
        value=b"",
        completion_id=completion_id,
        invocation_id_completion_id=completion_id + 1,
        callee_id=callee,
    )


CANCEL = e.Signal(signal_index=e.CANCEL_SIGNAL)


def test_a_durable_result_satisfies_the_wait_and_is_consumed() -> None:
    machine = machine_with(e.Sleep(wake_up_ms=5, completion_id=1), e.Completion(completion_id=1))
    assert p.progress(machine, [1], need_all=True) is p.SATISFIED
    assert machine.is_completed(1)


def test_any_of_two_is_satisfied_by_one_and_all_of_two_is_not() -> None:
    entries = (e.Sleep(wake_up_ms=5, completion_id=1), e.Sleep(wake_up_ms=9, completion_id=2), e.Completion(completion_id=2))
    assert p.progress(machine_with(*entries), [1, 2], need_all=False) is p.SATISFIED
    assert p.progress(machine_with(*entries), [1, 2], need_all=True) is p.AWAIT_INPUT


def test_a_result_not_yet_durable_is_awaited_and_never_suspends() -> None:
    machine = machine_with(e.Sleep(wake_up_ms=5, completion_id=1))
    machine.append_notification(e.Completion(completion_id=1))  # appended; its write is not durable yet
    assert p.progress(machine, [1], need_all=True, input_closed=True) is p.AWAIT_PROGRESS
    machine.mark_durable(len(machine.entries))
    assert p.progress(machine, [1], need_all=True, input_closed=True) is p.SATISFIED


def test_an_awaited_step_taken_but_not_started_is_started() -> None:
    machine = machine_with(e.Run(name="pay", completion_id=1), e.Run(name="ship", completion_id=2))
    verdict = p.progress(machine, [2], need_all=True, deferred_runs={1, 2})
    assert verdict == p.StartRuns((2,)), "only the step this wait needs starts"


def test_a_running_step_is_awaited_even_when_no_input_can_come() -> None:
    machine = machine_with(e.Run(name="pay", completion_id=1))
    assert p.progress(machine, [1], need_all=True, runs_in_flight=1, input_closed=True) is p.AWAIT_PROGRESS


def test_nothing_in_flight_waits_for_input_then_suspends_on_what_is_still_pending() -> None:
    machine = machine_with(
        e.Sleep(wake_up_ms=5, completion_id=1), e.Sleep(wake_up_ms=9, completion_id=2), e.Completion(completion_id=1)
    )
    assert p.progress(machine, [1, 2], need_all=True) is p.AWAIT_INPUT
    assert p.progress(machine, [1, 2], need_all=True, input_closed=True) == p.Suspend((2,))


def test_a_cancellation_ahead_starts_no_step_and_the_wait_raises_it_once_with_the_calls_to_cancel() -> None:
    greet = call(1, "inv_callee")
    machine = machine_with(greet, e.Run(name="pay", completion_id=3), CANCEL)
    verdict = p.progress(machine, [3], need_all=True, deferred_runs={3})
    assert verdict == p.Cancelled((greet,)), "the call still running is reached; the step never starts"
    assert machine.cancellation_given
    assert p.progress(machine, [3], need_all=True, deferred_runs={3}) == p.StartRuns((3,)), (
        "after the cancellation was given, a compensation's step runs"
    )


def test_a_call_whose_result_was_seen_is_not_cancelled() -> None:
    done, running = call(1, "inv_done"), call(3, "inv_running")
    machine = machine_with(done, running, e.Completion(completion_id=1, result=b"1"))
    assert p.progress(machine, [1], need_all=True) is p.SATISFIED
    machine.append_notification(CANCEL)
    machine.mark_durable(len(machine.entries))
    assert p.progress(machine, [3], need_all=True) == p.Cancelled((running,))


def test_a_cancellation_ends_a_wait_that_its_results_do_not_satisfy() -> None:
    machine = machine_with(e.Sleep(wake_up_ms=5, completion_id=1), CANCEL)
    assert p.progress(machine, [1], need_all=True) == p.Cancelled(())
    assert p.progress(machine, [1], need_all=True, input_closed=True) == p.Suspend((1,)), "given once only"
