"""What is stored besides journal entries: invocation records, timers, waiters, promises."""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass, field

from durio.journal.entries import Failure, Target
from durio.kinds import HandlerKind


class Status(str, enum.Enum):
    """An invocation's lifecycle, with Restate's names."""

    SCHEDULED = "scheduled"  # a delayed send, not yet due
    PENDING = "pending"  # queued behind another exclusive invocation on its key
    READY = "ready"  # may run now
    RUNNING = "running"  # an actor is executing it (never stored: derived from live actors)
    BACKING_OFF = "backing-off"  # an attempt failed; the next one waits for its backoff
    SUSPENDED = "suspended"  # waiting for a timer, a call, an awakeable or a promise; nothing in memory
    PAUSED = "paused"  # retries exhausted with on_max_attempts="pause", or paused by an operator
    COMPLETED = "completed"

    def __str__(self) -> str:
        return self.value


STORED_STATUSES = tuple(str(s) for s in Status if s is not Status.RUNNING)


@dataclass(slots=True)
class LastFailure:
    message: str
    code: int
    at_ms: int
    entry_index: int | None = None
    entry_name: str | None = None


@dataclass(slots=True)
class InvocationRecord:
    """One invocation's metadata. The journal is stored separately, entry by entry."""

    id: str
    target: Target
    handler_kind: HandlerKind | None  # None for plain services
    status: Status
    created_ms: int
    modified_ms: int
    idempotency_key: str | None = None
    caller_id: str | None = None  # the invocation that called or sent this one
    execute_at_ms: int = 0  # when a scheduled (delayed) invocation becomes due
    inbox_seq: int = 0  # its place in the key's inbox, for exclusive handlers
    retry_count: int = 0
    last_failure: dict | None = None  # a LastFailure as a dict (see last_failure_of)
    next_retry_ms: int = 0
    completed_ms: int = 0
    result: bytes | Failure | None = None  # the output, once completed
    retention_ms: int = 0  # how long the completed invocation is kept, from completed_ms
    deployment_id: str | None = None
    paused_reason: str | None = None
    awaiting: list = field(default_factory=list)  # what a suspended invocation waits for, for humans

    def __post_init__(self) -> None:
        # Storage holds the names (the same bytes as a member, which is a str); a record read back holds
        # the members, so a status or kind that no durio knows fails the read instead of flowing on.
        self.status = Status(self.status)
        if self.handler_kind is not None:
            self.handler_kind = HandlerKind(self.handler_kind)

    @property
    def is_completed(self) -> bool:
        return self.status == Status.COMPLETED

    @property
    def is_exclusive(self) -> bool:
        return self.handler_kind == HandlerKind.EXCLUSIVE

    @property
    def is_workflow_run(self) -> bool:
        return self.handler_kind == HandlerKind.WORKFLOW


class EventKind(enum.StrEnum):
    """What an entry of an invocation's history (`Txn.add_event`, shown by the admin API and the UI) records."""

    ATTEMPT_FAILED = "attempt_failed"  # with the failure's fields and the retry count
    WARNING = "warning"  # a command that did nothing, with why


@dataclass(slots=True)
class ReplyTo:
    """Who wants an invocation's result: a caller's completion, or an attach."""

    invocation_id: str
    completion_id: int


class TimerKind(enum.IntEnum):
    WAKE = 1  # a Sleep's completion
    START = 2  # a scheduled (delayed) invocation becomes due
    PURGE = 3  # a completed invocation's retention ends
    RETRY = 4  # a backing-off invocation's next attempt (so it survives a restart)
    SCHEDULE = 5  # a schedule's next tick is due (its invocation_id is the schedule's key)


@dataclass(frozen=True, slots=True, order=True)
class TimerKey:
    """A durable timer, ordered by due time."""

    due_ms: int
    invocation_id: str
    kind: int
    completion_id: int = 0


@dataclass(slots=True)
class PromiseRecord:
    """A workflow's durable promise once completed (absent while pending)."""

    result: bytes | Failure


Outcome = typing.Union[bytes, Failure]
