"""An operator's actions on one invocation: cancel, kill, pause, resume and purge, each answering a ControlOutcome."""

from __future__ import annotations

import typing

from durio.actors.effects import Applied, Effects
from durio.actors.messages import Message, MessageKind
from durio.actors.transitions.base import op_builder
from durio.actors.transitions.crossing import Crossing
from durio.actors.transitions.ending import Ending
from durio.actors.transitions.outcomes import CANCELLED, KILLED, ControlOutcome, Op
from durio.journal import entries as e
from durio.storage.records import InvocationRecord, Status, TimerKey, TimerKind
from durio.storage.txn import Txn

# An action on an unfinished invocation, inside the op's transaction.
_Action = typing.Callable[[Txn, InvocationRecord, Effects], ControlOutcome]


class OperatorActions(Ending, Crossing):
    def _on_unfinished(self, invocation_id: str, action: _Action) -> Op:
        """An operator action on an unfinished invocation: NOT_FOUND or COMPLETED otherwise."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            record = txn.get_invocation(invocation_id)
            if record is None:
                return Applied(ControlOutcome.NOT_FOUND, fx)
            if record.is_completed:
                return Applied(ControlOutcome.COMPLETED, fx)
            return Applied(action(txn, record, fx), fx)

        return op

    @op_builder
    def cancel(self, invocation_id: str, now_ms: int) -> Op:
        """Not started yet, it ends at once; otherwise a cancel signal unwinds the handler."""
        return self._on_unfinished(invocation_id, lambda txn, record, fx: self._request_cancel(txn, record, now_ms, fx))

    def _request_cancel(
        self, txn: Txn, record: InvocationRecord, now_ms: int, fx: Effects, source_id: str | None = None
    ) -> ControlOutcome:
        """Cancel `record` (for the invocation `source_id`, if one asked): at once if it has not started, else by
        its cancel signal, which is sent once."""
        if self._crosses(record.id, source_id):
            self._post(txn, Message(MessageKind.CANCEL, record.id, now_ms), fx)
            return ControlOutcome.SIGNALLED
        if record.status in (Status.PENDING, Status.SCHEDULED):
            self._end_unstarted(txn, record, CANCELLED, now_ms, fx)
            return ControlOutcome.DONE
        if not txn.signal_completed(record.id, e.CANCEL_SIGNAL):
            txn.mark_signal_completed(record.id, e.CANCEL_SIGNAL)
            self._send_to(txn, record.id, e.Signal(signal_index=e.CANCEL_SIGNAL, result=None), fx)
        return ControlOutcome.SIGNALLED

    def _end_unstarted(self, txn: Txn, record: InvocationRecord, failure: e.Failure, now_ms: int, fx: Effects) -> None:
        if record.status == Status.SCHEDULED:
            txn.delete_timer(TimerKey(record.execute_at_ms, record.id, TimerKind.START))
        self._finish(txn, record, failure, now_ms, fx)

    @op_builder
    def kill(self, invocation_id: str, now_ms: int) -> Op:
        """Complete at once with 'killed', and kill every call it is still waiting for."""

        def kill_now(txn: Txn, record: InvocationRecord, fx: Effects) -> ControlOutcome:
            self._kill_with_callees(txn, record, now_ms, fx, seen=set())
            return ControlOutcome.DONE

        return self._on_unfinished(invocation_id, kill_now)

    def _kill_with_callees(self, txn: Txn, record: InvocationRecord, now_ms: int, fx: Effects, seen: set[str]) -> None:
        """Kill `record` and, depth first, every callee whose answer it still waits for (`seen`: already killed)."""
        seen.add(record.id)
        if record.status == Status.SCHEDULED:
            txn.delete_timer(TimerKey(record.execute_at_ms, record.id, TimerKind.START))
        journal = txn.journal(record.id)
        answered = {n.completion_id for n in journal if isinstance(n, e.Completion)}
        self._finish(txn, record, KILLED, now_ms, fx)
        fx.stop.append(record.id)
        for entry in journal:
            if isinstance(entry, e.Call) and entry.completion_id not in answered and entry.callee_id not in seen:
                if self._crosses(entry.callee_id, record.id):
                    seen.add(entry.callee_id)
                    self._post(txn, Message(MessageKind.KILL, entry.callee_id, now_ms), fx)
                    continue
                child = txn.get_invocation(entry.callee_id)
                if child is not None and not child.is_completed:
                    self._kill_with_callees(txn, child, now_ms, fx, seen)

    @op_builder
    def pause(self, invocation_id: str, now_ms: int) -> Op:
        """Stop retrying: a running invocation stops its attempt and waits for `resume`."""

        def pause_now(txn: Txn, record: InvocationRecord, fx: Effects) -> ControlOutcome:
            if record.status in (Status.PENDING, Status.SCHEDULED):
                return ControlOutcome.NOT_RUNNING
            if record.status in (Status.PAUSED, Status.SUSPENDED):
                return ControlOutcome.UNCHANGED
            record.status = Status.PAUSED
            record.paused_reason = "paused by an operator"
            record.modified_ms = now_ms
            txn.put_invocation(record)
            fx.stop.append(record.id)
            return ControlOutcome.PAUSED

        return self._on_unfinished(invocation_id, pause_now)

    @op_builder
    def resume(self, invocation_id: str, now_ms: int) -> Op:
        """Run a paused or suspended invocation now (a backing-off one retries at once)."""

        def resume_now(txn: Txn, record: InvocationRecord, fx: Effects) -> ControlOutcome:
            if record.status in (Status.PENDING, Status.SCHEDULED):
                return ControlOutcome.NOT_STARTED
            if record.status in (Status.PAUSED, Status.SUSPENDED, Status.BACKING_OFF):
                record.status = Status.READY
                record.paused_reason = None
                record.next_retry_ms = 0
                record.modified_ms = now_ms
                txn.put_invocation(record)
            fx.start.append((record, None))
            return ControlOutcome.RESUMED

        return self._on_unfinished(invocation_id, resume_now)

    @op_builder
    def purge(self, invocation_id: str) -> Op:
        """Forget a completed invocation: its record, journal and, for a workflow run, the workflow's state."""

        def op(txn: Txn) -> Applied:
            return Applied(self._forget_completed(txn, invocation_id), Effects())

        return op

    @op_builder
    def purge_expired(self, invocation_id: str, timer: TimerKey) -> Op:
        """The retention timer of a completed invocation fired: consume it, and purge the invocation."""

        def op(txn: Txn) -> Applied:
            txn.delete_timer(timer)
            return Applied(self._forget_completed(txn, invocation_id), Effects())

        return op

    def _forget_completed(self, txn: Txn, invocation_id: str) -> ControlOutcome:
        record = txn.get_invocation(invocation_id)
        if record is None:
            return ControlOutcome.NOT_FOUND
        if not record.is_completed:
            return ControlOutcome.NOT_COMPLETED
        txn.delete_invocation(invocation_id)
        txn.delete_journal(invocation_id)
        txn.delete_events(invocation_id)
        txn.delete_signals(invocation_id)
        txn.delete_timer(TimerKey(record.completed_ms + record.retention_ms, record.id, TimerKind.PURGE))
        if record.is_workflow_run and record.target.key is not None:
            txn.clear_all_state(record.target.service, record.target.key)
            txn.clear_promises(record.target.service, record.target.key)
        return ControlOutcome.DONE
