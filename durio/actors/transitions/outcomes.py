"""What transitions take and answer: the op type, what they know of a target, their outcomes and refusals."""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass

from durio.actors.effects import Applied
from durio.journal import entries as e
from durio.kinds import HandlerKind
from durio.sdk.errors import ErrorCode
from durio.storage.records import InvocationRecord
from durio.storage.txn import Txn

# One durable change: runs inside the writer's transaction and answers the value and effects of the change.
Op = typing.Callable[[Txn], Applied]

WORKFLOW_ALREADY_INVOKED = e.Failure(ErrorCode.CONFLICT, "the workflow method was already invoked")
KILLED = e.Failure(ErrorCode.CONFLICT, "killed")
CANCELLED = e.Failure(ErrorCode.CONFLICT, "canceled")


class SuspendRefused(enum.Enum):
    """Why a suspension changed nothing although its invocation is still running."""

    # Storage holds journal entries the suspending actor has not seen (something it waits for may be there).
    STALE_JOURNAL = "stale journal"


STALE_JOURNAL = SuspendRefused.STALE_JOURNAL


class JournalOutOfStep(Exception):
    """A journal write that does not extend the stored journal by one (an earlier write was lost)."""


class NotKeyHolder(Exception):
    """An exclusive invocation tried to write before it held its key (its predecessor did not complete)."""


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the registry knows about a target, as transitions need it."""

    handler_kind: HandlerKind | None  # None for a plain service's handler
    retention_ms: int


# Finds a target's handler; None when the service or handler does not exist.
TargetResolver = typing.Callable[[e.Target], typing.Optional[TargetInfo]]


@dataclass(frozen=True, slots=True)
class Created:
    """Outcome of creating an invocation: new, or the one that already had this id."""

    created: bool
    record: InvocationRecord


class CompleteSignalOutcome(str, enum.Enum):
    """What completing an awakeable or a signal did."""

    DONE = "done"
    NOT_FOUND = "not_found"
    ALREADY_COMPLETED = "already_completed"
    INVOCATION_COMPLETED = "invocation_completed"


class ControlOutcome(str, enum.Enum):
    """What an operator's action (cancel, kill, pause, resume, purge) did to an invocation."""

    DONE = "done"
    SIGNALLED = "signalled"  # a cancel: the handler unwinds when it sees it
    PAUSED = "paused"
    RESUMED = "resumed"
    UNCHANGED = "unchanged"  # already paused or suspended
    NOT_FOUND = "not_found"
    COMPLETED = "completed"  # already completed: nothing to cancel, kill, pause or resume
    NOT_COMPLETED = "not_completed"  # a purge of an invocation that has not completed
    NOT_RUNNING = "not_running"  # a pause of one that has not started
    NOT_STARTED = "not_started"  # a resume of one that has not started


class ControlAction(str, enum.Enum):
    """An operator's action on one invocation (the runtime's `control` verb and the admin API's paths)."""

    CANCEL = "cancel"
    KILL = "kill"
    PAUSE = "pause"
    RESUME = "resume"
    PURGE = "purge"
