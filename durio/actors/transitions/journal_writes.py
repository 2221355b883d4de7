"""A running invocation's journal writes: appending an entry and performing what a command means, and dropping
a redelivered message whose notification the journal already has."""

from __future__ import annotations

import typing

from durio.actors.effects import Applied, Effects
from durio.actors.messages import Message, MessageKind
from durio.actors.transitions.base import op_builder
from durio.actors.transitions.creating import Creating
from durio.actors.transitions.operator import OperatorActions
from durio.actors.transitions.outcomes import CompleteSignalOutcome, Op
from durio.actors.transitions.promises import Promises
from durio.actors.transitions.signals import Signals
from durio.ids import InvalidId, parse_awakeable_id
from durio.journal import entries as e
from durio.sdk.errors import ErrorCode
from durio.storage.records import InvocationRecord, ReplyTo, Status, TimerKey, TimerKind
from durio.storage.txn import Txn


class JournalWrites(Creating, Signals, Promises, OperatorActions):
    @op_builder
    def append(
        self,
        invocation_id: str,
        index: int,
        entry: e.Entry,
        now_ms: int,
        outbox_seq: int | None = None,
        timer: TimerKey | None = None,
    ) -> Op:
        """Append one journal entry and perform what it means (a call creates its callee, a sleep arms a timer...).

        A notification consumes the message that carried it (`outbox_seq` or `timer`), even when it is fenced off."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            if outbox_seq is not None:
                txn.delete_outbox(invocation_id, outbox_seq)
            if timer is not None:
                txn.delete_timer(timer)
            record = self._write_entry(txn, invocation_id, index, entry)
            if record is None:
                return Applied(False, fx)
            if entry.is_command:
                self._perform(txn, record, entry, now_ms, fx)
            elif record.status == Status.SUSPENDED:
                record.status = Status.READY
                record.awaiting = []
                record.modified_ms = now_ms
                txn.put_invocation(record)
            return Applied(True, fx)

        return op

    @op_builder
    def discard_message(
        self, invocation_id: str, outbox_seq: int | None, timer: TimerKey | None, handle: int | None = None
    ) -> Op:
        """Drop a message whose notification the journal already has (a redelivery).

        With `handle`, only if the stored journal holds it: the copy the actor has in
        memory may still be on its way to storage, and if that write fails the message
        is all that is left of it.
        """

        def op(txn: Txn) -> Applied:
            if handle is not None and not any(
                not entry.is_command and e.handle_of(entry) == handle  # type: ignore[arg-type]
                for entry in txn.journal(invocation_id)
            ):
                return Applied(None, Effects())
            if outbox_seq is not None:
                txn.delete_outbox(invocation_id, outbox_seq)
            if timer is not None:
                txn.delete_timer(timer)
            return Applied(None, Effects())

        return op

    # ------------------------------------------------------------ what a command means

    def _perform(
        self, txn: Txn, record: InvocationRecord, entry: e.Entry, now_ms: int, fx: Effects, target_is_here: bool = False
    ) -> None:
        """What a journaled command does. `target_is_here`: a command posted by another partition, whose target
        this partition owns (so it is performed here, never posted again)."""
        target = record.target
        if isinstance(entry, e.SetState):
            txn.set_state(target.service, typing.cast(str, target.key), entry.key, entry.value)
        elif isinstance(entry, e.ClearState):
            txn.clear_state(target.service, typing.cast(str, target.key), entry.key)
        elif isinstance(entry, e.ClearAllState):
            txn.clear_all_state(target.service, typing.cast(str, target.key))
        elif isinstance(entry, e.Sleep):
            timer = TimerKey(entry.wake_up_ms, record.id, TimerKind.WAKE, entry.completion_id)
            txn.put_timer(timer)
            fx.timers.append(timer)
        elif isinstance(entry, e.Call):
            self._call(txn, record, entry, entry.completion_id, 0, now_ms, fx)
        elif isinstance(entry, e.OneWayCall):
            self._call(txn, record, entry, None, entry.invoke_at_ms, now_ms, fx)
        elif not target_is_here and self._posted_across(txn, record, entry, now_ms, fx):
            return
        elif isinstance(entry, e.CompleteAwakeable):
            self._complete_awakeable_for(txn, record, entry, now_ms, fx)
        elif isinstance(entry, e.SendSignal):
            self._send_signal(txn, record, entry, now_ms, fx)
        elif isinstance(entry, e.SendNamedSignal):
            self._send_named_signal(txn, record, entry, now_ms, fx)
        elif isinstance(entry, e.GetPromise):
            self._get_promise(txn, record, entry.key, entry.completion_id, fx)
        elif isinstance(entry, e.PeekPromise):
            self._peek_promise(txn, record, entry.key, entry.completion_id, fx)
        elif isinstance(entry, e.CompletePromise):
            self._complete_promise(txn, record, entry.key, entry.result, entry.completion_id, fx)
        elif isinstance(entry, (e.AttachInvocation, e.GetInvocationOutput)):
            self._attach(txn, record, entry, fx)

    def _perform_across(self, txn: Txn, record: InvocationRecord, entry: e.Entry, now_ms: int, fx: Effects) -> None:
        """The owner of a command's target performs it for `record`, an invocation of another partition."""
        self._perform(txn, record, entry, now_ms, fx, target_is_here=True)

    def _call(
        self,
        txn: Txn,
        caller: InvocationRecord,
        entry: e.Call | e.OneWayCall,
        reply_completion_id: int | None,
        invoke_at_ms: int,
        now_ms: int,
        fx: Effects,
    ) -> None:
        info = self.resolve_target(entry.target)
        if info is None:
            if reply_completion_id is not None:
                failure = e.Failure(ErrorCode.NOT_FOUND, f"{entry.target} does not exist: no such service or handler")
                self._send_to(txn, caller.id, e.Completion(completion_id=reply_completion_id, result=failure), fx)
            return
        callee = InvocationRecord(
            id=entry.callee_id,
            target=entry.target,
            handler_kind=info.handler_kind,
            status=Status.READY,
            created_ms=now_ms,
            modified_ms=now_ms,
            idempotency_key=entry.idempotency_key,
            caller_id=caller.id,
            execute_at_ms=invoke_at_ms if invoke_at_ms > now_ms else 0,
            retention_ms=info.retention_ms,
        )
        reply_to = ReplyTo(caller.id, reply_completion_id) if reply_completion_id is not None else None
        input_entry = e.Input(ts=now_ms, value=entry.value, headers=list(entry.headers))
        if self._crosses(callee.id, caller.id):
            self._post(txn, Message(MessageKind.INVOKE, callee.id, now_ms, callee, input_entry, reply_to), fx)
            return
        self._create_or_find(txn, callee, input_entry, reply_to, fx)

    def _complete_awakeable_for(
        self, txn: Txn, record: InvocationRecord, entry: e.CompleteAwakeable, now_ms: int, fx: Effects
    ) -> None:
        try:
            target_id, signal_index = parse_awakeable_id(entry.awakeable_id)
        except InvalidId as exc:  # in-process handlers are refused earlier; a remote one's command lands here
            self._warn(txn, record, f"awakeable {entry.awakeable_id} was not completed: {exc}", now_ms)
            return
        outcome = self._complete_signal(txn, target_id, signal_index, entry.result, fx)
        if outcome != CompleteSignalOutcome.DONE:
            self._warn(
                txn, record, f"awakeable {entry.awakeable_id} was not completed: {outcome.value.replace('_', ' ')}", now_ms
            )

    def _send_signal(self, txn: Txn, record: InvocationRecord, entry: e.SendSignal, now_ms: int, fx: Effects) -> None:
        target_record = txn.get_invocation(entry.target_invocation_id)
        if target_record is None or target_record.is_completed:
            return
        if entry.signal_index == e.CANCEL_SIGNAL:
            self._request_cancel(txn, target_record, now_ms, fx, source_id=record.id)
        elif entry.signal_index < e.FIRST_AWAKEABLE_SIGNAL:  # the other built-in signals mean nothing yet
            self._warn(
                txn,
                record,
                f"signal {entry.signal_index} to {entry.target_invocation_id} was not sent: "
                f"indexes below {e.FIRST_AWAKEABLE_SIGNAL} are reserved for built-in signals",
                now_ms,
            )
        else:
            self._complete_signal(txn, entry.target_invocation_id, entry.signal_index, entry.result, fx)

    def _send_named_signal(self, txn: Txn, record: InvocationRecord, entry: e.SendNamedSignal, now_ms: int, fx: Effects) -> None:
        target_record = txn.get_invocation(entry.target_invocation_id)
        if target_record is None or target_record.is_completed:
            self._warn(
                txn,
                record,
                f"signal '{entry.signal_name}' to {entry.target_invocation_id} was not sent: "
                f"{'no such invocation' if target_record is None else 'it has completed'}",
                now_ms,
            )
            return
        # Kept in the target's journal until its handler awaits ctx.signal(name); a second one for the same
        # name is journaled too, and the handler sees the first (JournalMachine: the first one counts).
        self._send_to(txn, entry.target_invocation_id, e.NamedSignal(signal_name=entry.signal_name, result=entry.result), fx)

    def _attach(self, txn: Txn, record: InvocationRecord, entry: e.AttachInvocation | e.GetInvocationOutput, fx: Effects) -> None:
        target = txn.get_invocation(entry.target_invocation_id)
        if target is None:
            result: e.Result = e.Failure(ErrorCode.NOT_FOUND, f"invocation {entry.target_invocation_id} not found")
        elif isinstance(entry, e.GetInvocationOutput) and not target.is_completed:
            result = None  # not ready: the void result
        elif isinstance(entry, e.AttachInvocation) and not target.is_completed:
            txn.add_reply_to(target.id, self.seq.next(), ReplyTo(record.id, entry.completion_id))
            return
        else:
            result = target.result
        self._send_to(txn, record.id, e.Completion(completion_id=entry.completion_id, result=result), fx)
