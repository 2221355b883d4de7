"""Durable state transitions: each method builds one op for the group-commit writer.

An op runs inside the writer's transaction, in a worker thread, so all
decisions that involve more than one invocation — is the key free, does this
idempotency key exist, was this awakeable already completed — are taken here,
serialized, against durable state. An op reads and writes only through its
`Txn` and returns `Applied(value, effects)`; the runtime applies the effects
on the event loop once the batch is durable.

Every op that acts for a running invocation first checks that the invocation
still exists and is not completed: a kill or purge committed in between
fences off whatever its actor still had in flight.

The sections are modules, one class each, and `Transitions` is all of them:
- creating.py: create, start_scheduled (inbox.py: joining and leaving a key's inbox);
- journal_writes.py: append (and what each command means), discard_message;
- signals.py and promises.py: awakeables and signals, a workflow's promises;
- ending.py: complete, fail_unreadable, suspend, attempt_failed, running_again;
- operator.py: cancel, kill, pause, resume, purge, purge_expired;
- crossing.py and incoming.py: what travels to another partition's owner (creating, cancelling or killing
  an invocation there, a command about one there), and applying what arrived;
- deployments.py: save_deployment.
Each public method is one op with one name; the steps the sections share (`_finish`, `_request_cancel`,
`_send_to`...) are private and named for the one step they take.

Rejected alternative: module-level functions over a shared settings object, with `Transitions` as a
facade of one-line wrappers. Every op would then be declared twice (the function and its wrapper),
and the sections still call one another's steps; as classes they share `self` and nothing is repeated.
"""

from __future__ import annotations

from durio.actors.transitions.deployments import Deployments
from durio.actors.transitions.incoming import IncomingMessages
from durio.actors.transitions.outcomes import (
    CANCELLED,
    KILLED,
    STALE_JOURNAL,
    WORKFLOW_ALREADY_INVOKED,
    CompleteSignalOutcome,
    ControlAction,
    ControlOutcome,
    Created,
    JournalOutOfStep,
    NotKeyHolder,
    Op,
    SuspendRefused,
    TargetInfo,
    TargetResolver,
)

__all__ = [
    "CANCELLED",
    "KILLED",
    "STALE_JOURNAL",
    "WORKFLOW_ALREADY_INVOKED",
    "CompleteSignalOutcome",
    "ControlAction",
    "ControlOutcome",
    "Created",
    "JournalOutOfStep",
    "NotKeyHolder",
    "Op",
    "SuspendRefused",
    "TargetInfo",
    "TargetResolver",
    "Transitions",
]


class Transitions(IncomingMessages, Deployments):
    """Builds ops. Holds only configuration and the sequence counter (TransitionsBase)."""
