"""What every section of the transitions shares: their configuration, the outbox, and the fences of a journal write."""

from __future__ import annotations

import functools
import logging
import typing

from durio.actors.effects import Effects, Sequences
from durio.actors.transitions.outcomes import JournalOutOfStep, NotKeyHolder, Op, TargetResolver
from durio.journal import entries as e
from durio.partitions import PartitionTable
from durio.storage.records import EventKind, InvocationRecord, Status
from durio.storage.txn import Txn

log = logging.getLogger("durio.transitions")

P = typing.ParamSpec("P")


def op_builder(build: typing.Callable[P, Op]) -> typing.Callable[P, Op]:
    """Mark a method that builds an op: the op is named `Transitions.<method>`, whichever section declares it.

    A batch holds only functions, so what picks ops out of one (a test refusing every `complete`, a
    debugger) knows them by that name; it stays the same however the sections are cut.
    """
    qualname = f"Transitions.{build.__name__}.<locals>.op"

    @functools.wraps(build)
    def named(*args: P.args, **kwargs: P.kwargs) -> Op:
        op = build(*args, **kwargs)
        op.__qualname__ = qualname
        return op

    return named


class TransitionsBase:
    """Holds only configuration and the sequence counter; the sections (subclasses) build the ops."""

    def __init__(
        self,
        sequences: Sequences,
        resolve_target: TargetResolver,
        default_retention_ms: int,
        purge_completed: bool = True,
        partitions: PartitionTable | None = None,
        messages_between_partitions: bool = False,
    ) -> None:
        self.seq = sequences
        self.resolve_target = resolve_target
        self.default_retention_ms = default_retention_ms
        self.purge_completed = purge_completed
        # Which invocations this process may change directly; the others get messages (durio.actors.messages).
        self.partitions = partitions or PartitionTable.single()
        # Tests: one process owns every partition, but what crosses partitions still travels as a message.
        self.messages_between_partitions = messages_between_partitions

    def _send_to(self, txn: Txn, target_id: str, notification: e.Notification, fx: Effects) -> None:
        """Put a notification in the outbox of `target_id`; the runtime moves it into the journal."""
        seq = self.seq.next()
        txn.put_outbox(target_id, seq, notification)
        fx.deliver.append((target_id, seq, notification))

    def _warn(self, txn: Txn, record: InvocationRecord, message: str, now_ms: int) -> None:
        """A command that did nothing: logged, and kept with the invocation's history for the UI."""
        log.warning("%s (by %s)", message, record.id)
        if self.partitions.is_local(record.id):  # (a command performed for another partition's invocation: logged only)
            txn.add_event(record.id, self.seq.next(), {"kind": EventKind.WARNING, "message": message, "at_ms": now_ms})

    def _write_entry(self, txn: Txn, invocation_id: str, index: int, entry: e.Entry) -> InvocationRecord | None:
        """Store entry `index` of a running invocation's journal, fenced: None (nothing written) once the invocation
        is gone or completed; JournalOutOfStep or NotKeyHolder (the op fails) for a write out of turn."""
        record = txn.get_invocation(invocation_id)
        if record is None or record.is_completed:
            return None
        self._check_holds_key(txn, record)
        self._check_next_index(txn, invocation_id, index)
        txn.put_entry(invocation_id, index, entry)
        return record

    @staticmethod
    def _check_next_index(txn: Txn, invocation_id: str, index: int) -> None:
        """A journal has no gaps: after a write failed, every later one of that actor fails until it reloads."""
        if txn.has_entry(invocation_id, index) or not txn.has_entry(invocation_id, index - 1):
            raise JournalOutOfStep(f"journal entry {index} of {invocation_id} does not follow its journal")

    @staticmethod
    def _check_holds_key(txn: Txn, record: InvocationRecord) -> None:
        """Only the key's holder (the head of its inbox) may write to an exclusive invocation's journal."""
        if not record.is_exclusive or record.target.key is None:
            return
        head = txn.inbox_head(record.target.service, record.target.key)
        if head is None or head[1] != record.id:
            raise NotKeyHolder(f"{record.id} does not hold {record.target.service}/{record.target.key} yet")


def ran_ahead(record: InvocationRecord) -> bool:
    """An exclusive invocation still queued for its key in storage, whose actor was handed the key early.

    What its attempt did counts for nothing until its predecessor's completion commits: its writes
    are refused, and so is any change to its status. Marked backing-off or suspended, it would load
    as if it held the key, with the key's state as it was before its predecessor's writes.
    """
    return record.status == Status.PENDING
