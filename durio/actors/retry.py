"""Retry policy: what a failed attempt means for the next one, and what its failure record says (pure).

An attempt fails with an error, maybe attributed to the `run` step that raised
it. The step's own policy (ctx.run's max_attempts / max_duration) counts that
step's failures; once exhausted, the step's completion becomes a failure the
handler sees (TerminalError), and the next attempt starts at once. Otherwise a
RetryableError's or the deployment's retry-after, else the invocation's
backoff, gives the delay; once that backoff is exhausted the invocation is
paused or killed (`on_max_attempts`).

No clock, storage or event loop here: the actor passes the time in and keeps
`StepFailures` across its attempts, so each rule is a plain function test.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from durio.actors.remote.attempt import RemoteFailure
from durio.journal import entries as e
from durio.journal.machine import JournalMismatch
from durio.sdk.errors import RetryableError, TerminalError
from durio.sdk.options import Backoff, RunOptions, run_backoff

JOURNAL_MISMATCH_CODE = 570  # Restate's code for a journal that diverged on replay


@dataclass(slots=True)
class AttemptFailure:
    """Why an attempt failed, and which step failed it (if a run step did)."""

    error: BaseException
    run_entry: e.Run | None = None
    run_options: RunOptions[typing.Any] | None = None

    @property
    def message(self) -> str:
        error = self.error
        text = getattr(error, "message", None) or str(error) or type(error).__name__
        if isinstance(error, (JournalMismatch, TerminalError, RetryableError, RemoteFailure)):
            return text
        if type(error).__module__.partition(".")[0] == "durio":  # durio's own (a protocol error, a bad output)
            return f"{type(error).__name__}: {text}"
        return repr(error)  # what the official SDK records for the handler's exceptions: ValueError('boom')

    @property
    def code(self) -> int:
        if isinstance(self.error, JournalMismatch):
            return JOURNAL_MISMATCH_CODE
        return getattr(self.error, "status_code", 500)


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Run the handler again after this many seconds."""

    delay_s: float


@dataclass(frozen=True, slots=True)
class StepExhausted:
    """The failing step's own retries are exhausted: its completion is `completion`, and the next attempt starts now."""

    completion: e.Completion


@dataclass(frozen=True, slots=True)
class Pause:
    """The invocation's retries are exhausted and its policy pauses it (an operator resumes it)."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The invocation's retries are exhausted and its policy kills it: it completes with the failure."""


PAUSE = Pause()
GIVE_UP = GiveUp()

Next = RetryAfter | StepExhausted | Pause | GiveUp


@dataclass
class StepFailures:
    """How often each step with its own retry policy failed, and when it first did (kept across attempts)."""

    by_completion_id: dict[int, tuple[int, float]] = field(default_factory=dict)

    def count(self, completion_id: int, now_s: float) -> tuple[int, float]:
        """Count one more failure: (failures so far, seconds since the first)."""
        failures, first = self.by_completion_id.get(completion_id, (0, now_s))
        failures += 1
        self.by_completion_id[completion_id] = (failures, first)
        return failures, now_s - first


def next_attempt(failure: AttemptFailure, retry_count: int, backoff: Backoff, steps: StepFailures, now_s: float) -> Next:
    """What follows the attempt that failed with `failure`, the invocation's `retry_count`-th failure."""
    if failure.run_entry is not None and failure.run_options is not None:
        step_backoff = run_backoff(failure.run_options)
        if step_backoff is not None:
            completion_id = failure.run_entry.completion_id
            failures, elapsed_s = steps.count(completion_id, now_s)
            if step_backoff.exhausted(failures, elapsed_s):
                # From now on the step raises TerminalError in the handler, which may catch it; its message is
                # the last failure's, as the official SDK's (ValueError('boom')).
                return StepExhausted(e.Completion(completion_id=completion_id, result=e.Failure(500, failure.message)))
            return RetryAfter(step_backoff.delay_s(failures))
    error = failure.error
    if isinstance(error, RetryableError) and error.retry_after is not None:
        return RetryAfter(error.retry_after.total_seconds())
    if isinstance(error, RemoteFailure) and error.retry_after_s is not None:
        return RetryAfter(error.retry_after_s)
    if backoff.exhausted(retry_count):
        if backoff.on_max_attempts == "pause":
            return PAUSE
        if backoff.on_max_attempts == "kill":
            return GIVE_UP
        return RetryAfter(0.0)
    return RetryAfter(backoff.delay_s(retry_count))


def failure_details(failure: AttemptFailure, journal: typing.Sequence[e.Entry], now_ms: int) -> dict[str, typing.Any]:
    """The failure as the invocation's record keeps it (`last_failure`, shown by the admin API and the UI)."""
    entry = failure.run_entry
    details: dict[str, typing.Any] = {
        "message": failure.message,
        "code": failure.code,
        "at_ms": now_ms,
        "entry_index": None,
        "entry_name": entry.name if entry is not None else None,
        "entry_type": entry.type_name if entry is not None else None,
    }
    error = failure.error
    if entry is not None:
        details["entry_index"] = next((i for i, x in enumerate(journal) if x is entry), None)
    elif isinstance(error, JournalMismatch):
        details["entry_index"] = error.index
    elif isinstance(error, RemoteFailure):
        details["entry_index"] = error.entry_index
        details["entry_name"] = error.entry_name
    return details
