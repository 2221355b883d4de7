"""Retry policy (durio.actors.retry): the next attempt's delay, pause or give-up, and the failure record, as plain calls."""

from __future__ import annotations

import datetime

from durio.actors import retry
from durio.actors.remote.attempt import RemoteFailure
from durio.journal import entries as e
from durio.journal.machine import JournalMismatch
from durio.sdk.errors import RetryableError, TerminalError
from durio.sdk.options import Backoff, RunOptions

STEADY = Backoff(initial_s=1.0, factor=2.0, max_s=10.0, jitter=0.0)


def next_after(
    failure: retry.AttemptFailure,
    retry_count: int = 1,
    backoff: Backoff = STEADY,
    steps: retry.StepFailures | None = None,
    now_s: float = 100.0,
) -> retry.Next:
    return retry.next_attempt(failure, retry_count, backoff, steps or retry.StepFailures(), now_s)


def test_the_invocation_backoff_grows_with_each_failure() -> None:
    failure = retry.AttemptFailure(ValueError("boom"))
    assert [next_after(failure, n) for n in (1, 2, 3, 6)] == [
        retry.RetryAfter(1.0),
        retry.RetryAfter(2.0),
        retry.RetryAfter(4.0),
        retry.RetryAfter(10.0),
    ]


def test_a_retry_after_of_the_error_or_the_deployment_wins_over_the_backoff() -> None:
    retryable = RetryableError("busy", retry_after=datetime.timedelta(seconds=7))
    assert next_after(retry.AttemptFailure(retryable), 3) == retry.RetryAfter(7.0)
    assert next_after(retry.AttemptFailure(RemoteFailure("busy", retry_after_s=0.5)), 3) == retry.RetryAfter(0.5)


def test_exhausted_attempts_pause_or_kill_as_the_policy_says() -> None:
    failure = retry.AttemptFailure(ValueError("boom"))
    assert next_after(failure, 2, Backoff(max_attempts=3, jitter=0.0)) == retry.RetryAfter(0.1), "2 of 3: retried"
    assert next_after(failure, 3, Backoff(max_attempts=3, on_max_attempts="pause")) is retry.PAUSE
    assert next_after(failure, 3, Backoff(max_attempts=3, on_max_attempts="kill")) is retry.GIVE_UP


def test_a_step_with_its_own_policy_is_retried_by_it_then_fails_in_the_handler() -> None:
    step = e.Run(name="charge", completion_id=4)
    options: RunOptions[object] = RunOptions(max_attempts=3, initial_retry_interval=datetime.timedelta(seconds=2))
    failure = retry.AttemptFailure(ValueError("declined"), step, options)
    steps = retry.StepFailures()
    first = next_after(failure, 1, steps=steps, now_s=10.0)
    second = next_after(failure, 2, steps=steps, now_s=12.0)
    assert isinstance(first, retry.RetryAfter) and isinstance(second, retry.RetryAfter)
    assert 1.5 <= first.delay_s <= 2.5 and 3.0 <= second.delay_s <= 5.0, "the step's backoff, not the invocation's"
    third = next_after(failure, 3, steps=steps, now_s=15.0)
    assert third == retry.StepExhausted(e.Completion(completion_id=4, result=e.Failure(500, "ValueError('declined')")))


def test_a_step_with_a_max_duration_gives_up_once_it_has_failed_for_that_long() -> None:
    step = e.Run(name="poll", completion_id=2)
    options: RunOptions[object] = RunOptions(max_duration=datetime.timedelta(seconds=30))
    failure = retry.AttemptFailure(ValueError("not yet"), step, options)
    steps = retry.StepFailures()
    assert isinstance(next_after(failure, 1, steps=steps, now_s=0.0), retry.RetryAfter)
    assert isinstance(next_after(failure, 2, steps=steps, now_s=29.0), retry.RetryAfter)
    assert isinstance(next_after(failure, 3, steps=steps, now_s=30.0), retry.StepExhausted)


def test_a_step_without_a_policy_of_its_own_follows_the_invocation_backoff() -> None:
    failure = retry.AttemptFailure(ValueError("boom"), e.Run(name="x", completion_id=1), RunOptions())
    assert next_after(failure, 2) == retry.RetryAfter(2.0)


def test_the_failure_message_and_code_read_as_restate_records_them() -> None:
    mismatch = JournalMismatch(3, e.Run(name="a", completion_id=1), e.Run(name="b", completion_id=1))
    assert retry.AttemptFailure(ValueError("boom")).message == "ValueError('boom')"
    assert retry.AttemptFailure(TerminalError("no", 404)).message == "no"
    assert retry.AttemptFailure(TerminalError("no", 404)).code == 404
    assert retry.AttemptFailure(mismatch).code == 570 and "journal mismatch at entry 3" in retry.AttemptFailure(mismatch).message
    assert retry.AttemptFailure(LookupError("x")).code == 500


def test_the_failure_record_names_the_entry_that_failed() -> None:
    step = e.Run(name="charge", completion_id=1)
    journal = [e.Input(), step]
    details = retry.failure_details(retry.AttemptFailure(ValueError("declined"), step, RunOptions()), journal, 1234)
    assert details == {
        "message": "ValueError('declined')",
        "code": 500,
        "at_ms": 1234,
        "entry_index": 1,
        "entry_name": "charge",
        "entry_type": "run",
    }
    mismatch = JournalMismatch(5, None, e.Run(name="b", completion_id=1))
    assert retry.failure_details(retry.AttemptFailure(mismatch), journal, 0)["entry_index"] == 5
    remote = RemoteFailure("boom", entry_index=2, entry_name="pay")
    remote_details = retry.failure_details(retry.AttemptFailure(remote), journal, 0)
    assert (remote_details["entry_index"], remote_details["entry_name"], remote_details["entry_type"]) == (2, "pay", None)
