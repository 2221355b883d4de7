"""Creating invocations: new ones (or the one that already has the id), and delayed ones once they are due."""

from __future__ import annotations

import typing

from durio.actors.effects import Applied, Effects
from durio.actors.messages import Message, MessageKind
from durio.actors.transitions.base import op_builder
from durio.actors.transitions.crossing import Crossing
from durio.actors.transitions.inbox import KeyInbox
from durio.actors.transitions.outcomes import WORKFLOW_ALREADY_INVOKED, Created, Op
from durio.journal import entries as e
from durio.storage.records import InvocationRecord, ReplyTo, Status, TimerKey, TimerKind
from durio.storage.txn import Txn


class Creating(KeyInbox, Crossing):
    @op_builder
    def create(
        self, record: InvocationRecord, input_entry: e.Input, reply_to: ReplyTo | None = None, started: bool = False
    ) -> Op:
        """Create an invocation unless one with this id exists (idempotency keys, workflow runs).

        `started`: its actor already runs (see Runtime._submit_creation), so none is started here.
        """

        def op(txn: Txn) -> Applied:
            fx = Effects()
            if not self.partitions.is_local(record.id):
                # Another worker's partition (a schedule's tick): its owner creates it.
                self._post(txn, Message(MessageKind.INVOKE, record.id, record.created_ms, record, input_entry, reply_to), fx)
                return Applied(Created(True, record), fx)
            created = self._create_or_find(txn, record, input_entry, reply_to, fx)
            if started:
                fx.start = [(r, j) for r, j in fx.start if r.id != record.id]
            return Applied(created, fx)

        return op

    def _create_or_find(
        self, txn: Txn, record: InvocationRecord, input_entry: e.Input, reply_to: ReplyTo | None, fx: Effects
    ) -> Created:
        """Store a new invocation and its input (queued, scheduled or ready); or find the one with its id,
        which then answers `reply_to` as it would have answered the new one."""
        existing = txn.get_invocation(record.id)
        if existing is not None:
            if reply_to is not None:
                if existing.is_workflow_run:
                    self._send_to(
                        txn,
                        reply_to.invocation_id,
                        e.Completion(completion_id=reply_to.completion_id, result=WORKFLOW_ALREADY_INVOKED),
                        fx,
                    )
                else:
                    self._reply_when_done(txn, existing, reply_to, fx)
            return Created(False, existing)
        if record.execute_at_ms:
            record.status = Status.SCHEDULED
            timer = TimerKey(record.execute_at_ms, record.id, TimerKind.START)
            txn.put_timer(timer)
            fx.timers.append(timer)
        elif record.is_exclusive:
            self._join_inbox(txn, record, fx)
        else:
            record.status = Status.READY
        txn.put_invocation(record)
        txn.put_entry(record.id, 0, input_entry)
        if reply_to is not None:
            txn.add_reply_to(record.id, self.seq.next(), reply_to)
        if record.status == Status.READY:
            fx.start.append((record, [input_entry]))
        fx.created += 1
        return Created(True, record)

    def _reply_when_done(self, txn: Txn, callee: InvocationRecord, reply_to: ReplyTo, fx: Effects) -> None:
        if callee.is_completed:
            result = typing.cast(typing.Union[bytes, e.Failure], callee.result)
            self._send_to(txn, reply_to.invocation_id, e.Completion(completion_id=reply_to.completion_id, result=result), fx)
        else:
            txn.add_reply_to(callee.id, self.seq.next(), reply_to)

    @op_builder
    def start_scheduled(self, invocation_id: str, timer: TimerKey, now_ms: int) -> Op:
        """A delayed invocation is due: it runs, or queues on its key."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            txn.delete_timer(timer)
            record = txn.get_invocation(invocation_id)
            if record is None or record.status != Status.SCHEDULED:
                return Applied(False, fx)
            record.execute_at_ms = 0
            record.modified_ms = now_ms
            if record.is_exclusive:
                self._join_inbox(txn, record, fx)
            else:
                record.status = Status.READY
            txn.put_invocation(record)
            if record.status == Status.READY:
                fx.start.append((record, None))
            return Applied(True, fx)

        return op
