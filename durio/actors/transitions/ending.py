"""Ending an attempt or the invocation: completing it, failing an unreadable one, suspending, and failed attempts."""

from __future__ import annotations

from durio.actors.effects import Applied, Effects
from durio.actors.transitions.base import op_builder, ran_ahead
from durio.actors.transitions.inbox import KeyInbox
from durio.actors.transitions.outcomes import STALE_JOURNAL, Op
from durio.journal import entries as e
from durio.sdk.errors import ErrorCode
from durio.storage.frames import FrameError
from durio.storage.records import EventKind, InvocationRecord, Status, TimerKey, TimerKind
from durio.storage.txn import Txn


class Ending(KeyInbox):
    @op_builder
    def complete(self, invocation_id: str, index: int, output: e.Output, now_ms: int) -> Op:
        """Record the Output and finish the invocation: reply, free the key, schedule the purge."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            record = self._write_entry(txn, invocation_id, index, output)
            if record is None:
                return Applied(False, fx)
            self._finish(txn, record, output.result, now_ms, fx)
            return Applied(True, fx)

        return op

    def _finish(self, txn: Txn, record: InvocationRecord, result: bytes | e.Failure, now_ms: int, fx: Effects) -> None:
        was_scheduled = record.status == Status.SCHEDULED
        record.status = Status.COMPLETED
        record.result = result
        record.completed_ms = now_ms
        record.modified_ms = now_ms
        record.awaiting = []
        if not record.retention_ms:
            record.retention_ms = self.default_retention_ms
        txn.put_invocation(record)
        if record.is_exclusive and record.inbox_seq and not was_scheduled:
            self._leave_inbox(txn, record, now_ms, fx)
        for reply_to in txn.take_reply_to(record.id):
            self._send_to(txn, reply_to.invocation_id, e.Completion(completion_id=reply_to.completion_id, result=result), fx)
        if self.purge_completed:
            purge_timer = TimerKey(now_ms + record.retention_ms, record.id, TimerKind.PURGE)
            txn.put_timer(purge_timer)
            fx.timers.append(purge_timer)
        fx.completed.append((record.id, result))

    @op_builder
    def fail_unreadable(self, invocation_id: str, reason: str, now_ms: int) -> Op:
        """End an invocation whose stored journal cannot be read; its bytes stay for inspection."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            try:
                record = txn.get_invocation(invocation_id)
            except FrameError:
                return Applied(False, fx)  # not even the record is readable: nothing to answer to
            if record is None or record.is_completed:
                return Applied(False, fx)
            failure = e.Failure(ErrorCode.INTERNAL, f"durio cannot read this invocation's journal: {reason}")
            self._finish(txn, record, failure, now_ms, fx)
            return Applied(True, fx)

        return op

    @op_builder
    def suspend(self, invocation_id: str, awaiting: list[str], now_ms: int, journal_length: int | None = None) -> Op:
        """Suspend, unless the stored journal has grown past the `journal_length` entries the actor has seen
        (something it waits for may be there): then the value is STALE_JOURNAL and nothing changes."""

        def op(txn: Txn) -> Applied:
            record = txn.get_invocation(invocation_id)
            if record is None or record.is_completed or ran_ahead(record):
                return Applied(False, Effects())
            if journal_length is not None and txn.has_entry(invocation_id, journal_length):
                return Applied(STALE_JOURNAL, Effects())
            record.status = Status.SUSPENDED
            record.awaiting = awaiting
            record.modified_ms = now_ms
            txn.put_invocation(record)
            return Applied(True, Effects())

        return op

    @op_builder
    def attempt_failed(
        self, invocation_id: str, retry_count: int, failure: dict, next_retry_ms: int, pause: bool, now_ms: int
    ) -> Op:
        """Remember a failed attempt: the retry count, the last failure, and when the next attempt runs."""

        def op(txn: Txn) -> Applied:
            record = txn.get_invocation(invocation_id)
            if record is None or record.is_completed or ran_ahead(record):
                return Applied(False, Effects())
            record.retry_count = retry_count
            record.last_failure = failure
            record.next_retry_ms = next_retry_ms
            record.status = Status.PAUSED if pause else Status.BACKING_OFF
            record.paused_reason = "retries exhausted" if pause else None
            record.modified_ms = now_ms
            txn.put_invocation(record)
            txn.add_event(invocation_id, self.seq.next(), dict(failure, kind=EventKind.ATTEMPT_FAILED, retry_count=retry_count))
            return Applied(True, Effects())

        return op

    @op_builder
    def running_again(self, invocation_id: str, now_ms: int) -> Op:
        """A backing-off invocation starts its next attempt."""

        def op(txn: Txn) -> Applied:
            record = txn.get_invocation(invocation_id)
            if record is None or record.status != Status.BACKING_OFF:
                return Applied(False, Effects())
            record.status = Status.READY
            record.modified_ms = now_ms
            txn.put_invocation(record)
            return Applied(True, Effects())

        return op
