"""Durable state transitions: each function builds one op for the group-commit writer.

An op runs inside the writer's transaction, in a worker thread, so all
decisions that involve more than one invocation — is the key free, does this
idempotency key exist, was this awakeable already completed — are taken here,
serialized, against durable state. An op reads and writes only through its
`Txn` and returns `Applied(value, effects)`; the runtime applies the effects
on the Trio loop once the batch is durable.

Every op that acts for a running invocation first checks that the invocation
still exists and is not completed: a kill or purge committed in between
fences off whatever its actor still had in flight.
"""

from __future__ import annotations

import enum
import logging
import typing
from dataclasses import dataclass

from durio.actors.effects import Applied, Effects, Sequences
from durio.actors.messages import Message, MessageKind
from durio.ids import InvalidId, parse_awakeable_id
from durio.journal import entries as e
from durio.partitions import PartitionTable
from durio.storage.frames import FrameError
from durio.storage.records import InvocationRecord, PromiseRecord, ReplyTo, Status, TimerKey, TimerKind
from durio.storage.txn import Txn

log = logging.getLogger("durio.transitions")

Op = typing.Callable[[Txn], Applied]

WORKFLOW_ALREADY_INVOKED = e.Failure(409, "the workflow method was already invoked")
KILLED = e.Failure(409, "killed")
CANCELLED = e.Failure(409, "canceled")
# A suspension refused because storage holds journal entries the suspending actor has not seen.
STALE_JOURNAL = "stale journal"


class JournalOutOfStep(Exception):
    """A journal write that does not extend the stored journal by one (an earlier write was lost)."""


class NotKeyHolder(Exception):
    """An exclusive invocation tried to write before it held its key (its predecessor did not complete)."""


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the registry knows about a target, as transitions need it."""

    handler_kind: str | None  # "exclusive", "shared", "workflow" or None
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


class Transitions:
    """Builds ops. Holds only configuration and the sequence counter."""

    def __init__(self, sequences: Sequences, resolve_target: TargetResolver, default_retention_ms: int, purge_completed: bool = True,
                 partitions: PartitionTable | None = None, messages_between_partitions: bool = False) -> None:
        self.seq = sequences
        self.resolve_target = resolve_target
        self.default_retention_ms = default_retention_ms
        self.purge_completed = purge_completed
        # Which invocations this process may change directly; the others get messages (durio.actors.messages).
        self.partitions = partitions or PartitionTable.single()
        # Tests: one process owns every partition, but what crosses partitions still travels as a message.
        self.messages_between_partitions = messages_between_partitions

    def _crosses(self, target_id: str, source_id: str | None) -> bool:
        """Whether a change to `target_id`, made for `source_id`, must be a message to the target's owner."""
        if not self.partitions.is_local(target_id):
            return True
        # (In that test mode even a callee that landed on its caller's partition gets a message, so that every
        # scenario takes the message path whatever partitions the random ids fall on.)
        return self.messages_between_partitions and source_id is not None and target_id != source_id

    def _post(self, txn: Txn, message: Message, fx: Effects) -> None:
        """Leave a message for the worker that owns `message.target_id`, in this transaction."""
        partition = self.partitions.of_id(message.target_id)
        txn.put_message(partition, self.seq.next(), message.encode())
        fx.messages.append(partition)

    def apply_messages(self, partition: int, limit: int = 256) -> Op:
        """Apply the oldest messages to a partition this process owns, deleting each as it is applied.

        The value is how many were applied (`limit`: more may be waiting)."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            pending = txn.messages_for(partition, limit)
            for seq, raw in pending:
                txn.delete_message(partition, seq)
                try:
                    message = Message.decode(raw, f"message {seq} to partition {partition}")
                except FrameError as exc:
                    log.error("dropping an unreadable message: %s", exc)
                    continue
                self._apply_message(txn, message, fx)
            return Applied(len(pending), fx)

        return op

    def _apply_message(self, txn: Txn, message: Message, fx: Effects) -> None:
        if message.kind == MessageKind.INVOKE:
            assert message.record is not None and message.input_entry is not None
            self._create(txn, message.record, message.input_entry, message.reply_to, fx)
            return
        if message.kind == MessageKind.COMMAND:
            assert message.record is not None and message.command is not None
            self._perform_across(txn, message.record, message.command, message.now_ms, fx)
            return
        record = txn.get_invocation(message.target_id)
        if record is None or record.is_completed:
            return
        if message.kind == MessageKind.CANCEL:
            self._cancel(txn, record, message.now_ms, fx)
        elif message.kind == MessageKind.KILL:
            self._kill(txn, record, message.now_ms, fx, seen=set())

    def _posted_across(self, txn: Txn, record: InvocationRecord, entry: e.Entry, now_ms: int, fx: Effects) -> bool:
        """Post a command about another partition's invocation to that partition's owner; False if it is ours."""
        target_id = _command_target(entry)
        if target_id is None or not self._crosses(target_id, record.id):
            return False
        self._post(txn, Message(MessageKind.COMMAND, target_id, now_ms, record, command=entry), fx)
        return True

    # ------------------------------------------------------------ creating invocations

    def create(self, record: InvocationRecord, input_entry: e.Input, reply_to: ReplyTo | None = None, started: bool = False) -> Op:
        """Create an invocation unless one with this id exists (idempotency keys, workflow runs).

        `started`: its actor already runs (see Runtime._submit_creation), so none is started here.
        """

        def op(txn: Txn) -> Applied:
            fx = Effects()
            if not self.partitions.is_local(record.id):
                # Another worker's partition (a schedule's tick): its owner creates it.
                self._post(txn, Message(MessageKind.INVOKE, record.id, record.created_ms, record, input_entry, reply_to), fx)
                return Applied(Created(True, record), fx)
            created = self._create(txn, record, input_entry, reply_to, fx)
            if started:
                fx.start = [(r, j) for r, j in fx.start if r.id != record.id]
            return Applied(created, fx)

        return op

    def _create(
        self, txn: Txn, record: InvocationRecord, input_entry: e.Input, reply_to: ReplyTo | None, fx: Effects
    ) -> Created:
        existing = txn.get_invocation(record.id)
        if existing is not None:
            if reply_to is not None:
                if existing.is_workflow_run:
                    self._send_to(txn, reply_to.invocation_id, e.Completion(completion_id=reply_to.completion_id, result=WORKFLOW_ALREADY_INVOKED), fx)
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

    def _join_inbox(self, txn: Txn, record: InvocationRecord, fx: Effects) -> None:
        """Queue an exclusive invocation on its key; it runs now if the key is free."""
        service, key = record.target.service, typing.cast(str, record.target.key)
        head = txn.inbox_head(service, key)
        record.inbox_seq = self.seq.next()
        txn.inbox_push(service, key, record.inbox_seq, record.id)
        if head is None:
            record.status = Status.READY
            fx.fresh_holders[record.id] = txn.state_of(service, key)
        else:
            record.status = Status.PENDING
            fx.enqueue.append(record)

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

    # ------------------------------------------------------------ journal writes of a running invocation

    def append(
        self,
        invocation_id: str,
        index: int,
        entry: e.Entry,
        now_ms: int,
        outbox_seq: int | None = None,
        timer: TimerKey | None = None,
    ) -> Op:
        """Append one journal entry and perform what it means (a call creates its callee, a sleep arms a timer...)."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            # The message that carried a notification is consumed with it, even when fenced off below.
            if outbox_seq is not None:
                txn.delete_outbox(invocation_id, outbox_seq)
            if timer is not None:
                txn.delete_timer(timer)
            record = txn.get_invocation(invocation_id)
            if record is None or record.is_completed:
                return Applied(False, fx)
            self._check_holds_key(txn, record)
            self._check_next_index(txn, invocation_id, index)
            txn.put_entry(invocation_id, index, entry)
            if entry.is_command:
                self._perform(txn, record, entry, now_ms, fx)
            elif record.status == Status.SUSPENDED:
                record.status = Status.READY
                record.awaiting = []
                record.modified_ms = now_ms
                txn.put_invocation(record)
            return Applied(True, fx)

        return op

    def discard_message(self, invocation_id: str, outbox_seq: int | None, timer: TimerKey | None,
                        handle: int | None = None) -> Op:
        """Drop a message whose notification the journal already has (a redelivery).

        With `handle`, only if the stored journal holds it: the copy the actor has in
        memory may still be on its way to storage, and if that write fails the message
        is all that is left of it.
        """

        def op(txn: Txn) -> Applied:
            if handle is not None and not any(
                not entry.is_command and e.handle_of(entry) == handle for entry in txn.journal(invocation_id)  # type: ignore[arg-type]
            ):
                return Applied(None, Effects())
            if outbox_seq is not None:
                txn.delete_outbox(invocation_id, outbox_seq)
            if timer is not None:
                txn.delete_timer(timer)
            return Applied(None, Effects())

        return op

    def _perform(self, txn: Txn, record: InvocationRecord, entry: e.Entry, now_ms: int, fx: Effects,
                 target_is_here: bool = False) -> None:
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
            try:
                target_id, signal_index = parse_awakeable_id(entry.awakeable_id)
            except InvalidId as exc:  # in-process handlers are refused earlier; a remote one's command lands here
                self._warn(txn, record, f"awakeable {entry.awakeable_id} was not completed: {exc}", now_ms)
                return
            outcome = self._complete_signal(txn, target_id, signal_index, entry.result, fx)
            if outcome != CompleteSignalOutcome.DONE:
                self._warn(txn, record, f"awakeable {entry.awakeable_id} was not completed: {outcome.replace('_', ' ')}", now_ms)
        elif isinstance(entry, e.SendSignal):
            target_record = txn.get_invocation(entry.target_invocation_id)
            if target_record is None or target_record.is_completed:
                return
            if entry.signal_index == e.CANCEL_SIGNAL:
                self._cancel(txn, target_record, now_ms, fx, source_id=record.id)
            elif entry.signal_index < e.FIRST_AWAKEABLE_SIGNAL:  # the other built-in signals mean nothing yet
                self._warn(txn, record, f"signal {entry.signal_index} to {entry.target_invocation_id} was not sent: "
                           f"indexes below {e.FIRST_AWAKEABLE_SIGNAL} are reserved for built-in signals", now_ms)
            else:
                self._complete_signal(txn, entry.target_invocation_id, entry.signal_index, entry.result, fx)
        elif isinstance(entry, e.SendNamedSignal):
            target_record = txn.get_invocation(entry.target_invocation_id)
            if target_record is None or target_record.is_completed:
                self._warn(txn, record, f"signal '{entry.signal_name}' to {entry.target_invocation_id} was not sent: "
                           f"{'no such invocation' if target_record is None else 'it has completed'}", now_ms)
                return
            # Kept in the target's journal until its handler awaits ctx.signal(name); a second one for the same
            # name is journaled too, and the handler sees the first (JournalMachine: the first one counts).
            self._send_to(txn, entry.target_invocation_id, e.NamedSignal(signal_name=entry.signal_name, result=entry.result), fx)
        elif isinstance(entry, e.GetPromise):
            self._get_promise(txn, record, entry.key, entry.completion_id, fx)
        elif isinstance(entry, e.PeekPromise):
            promise = txn.get_promise(target.service, typing.cast(str, target.key), entry.key)
            result = None if promise is None else promise.result
            self._send_to(txn, record.id, e.Completion(completion_id=entry.completion_id, result=result), fx)
        elif isinstance(entry, e.CompletePromise):
            promise_outcome = self._complete_promise(txn, target.service, typing.cast(str, target.key), entry.key, entry.result, fx)
            self._send_to(txn, record.id, e.Completion(completion_id=entry.completion_id, result=promise_outcome), fx)
        elif isinstance(entry, (e.AttachInvocation, e.GetInvocationOutput)):
            self._attach(txn, record, entry, fx)

    def _perform_across(self, txn: Txn, record: InvocationRecord, entry: e.Entry, now_ms: int, fx: Effects) -> None:
        """The owner of a command's target performs it for `record`, an invocation of another partition."""
        self._perform(txn, record, entry, now_ms, fx, target_is_here=True)

    def _warn(self, txn: Txn, record: InvocationRecord, message: str, now_ms: int) -> None:
        """A command that did nothing: logged, and kept with the invocation's history for the UI."""
        log.warning("%s (by %s)", message, record.id)
        if self.partitions.is_local(record.id):  # (a command performed for another partition's invocation: logged only)
            txn.add_event(record.id, self.seq.next(), {"kind": "warning", "message": message, "at_ms": now_ms})

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
                failure = e.Failure(404, f"{entry.target} does not exist: no such service or handler")
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
        self._create(txn, callee, input_entry, reply_to, fx)

    def _reply_when_done(self, txn: Txn, callee: InvocationRecord, reply_to: ReplyTo, fx: Effects) -> None:
        if callee.is_completed:
            result = typing.cast(typing.Union[bytes, e.Failure], callee.result)
            self._send_to(txn, reply_to.invocation_id, e.Completion(completion_id=reply_to.completion_id, result=result), fx)
        else:
            txn.add_reply_to(callee.id, self.seq.next(), reply_to)

    def _attach(self, txn: Txn, record: InvocationRecord, entry: e.AttachInvocation | e.GetInvocationOutput, fx: Effects) -> None:
        target = txn.get_invocation(entry.target_invocation_id)
        if target is None:
            result: e.Result = e.Failure(404, f"invocation {entry.target_invocation_id} not found")
        elif isinstance(entry, e.GetInvocationOutput) and not target.is_completed:
            result = None  # not ready: the void result
        elif isinstance(entry, e.AttachInvocation) and not target.is_completed:
            txn.add_reply_to(target.id, self.seq.next(), ReplyTo(record.id, entry.completion_id))
            return
        else:
            result = target.result
        self._send_to(txn, record.id, e.Completion(completion_id=entry.completion_id, result=result), fx)

    def _send_to(self, txn: Txn, target_id: str, notification: e.Notification, fx: Effects) -> None:
        """Put a notification in the outbox of `target_id`; the runtime moves it into the journal."""
        seq = self.seq.next()
        txn.put_outbox(target_id, seq, notification)
        fx.deliver.append((target_id, seq, notification))

    # ------------------------------------------------------------ signals and awakeables

    def complete_awakeable(self, awakeable_id: str, result: bytes | e.Failure) -> Op:
        """Resolve or reject an awakeable from outside (the ingress)."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            target_id, signal_index = parse_awakeable_id(awakeable_id)
            return Applied(self._complete_signal(txn, target_id, signal_index, result, fx), fx)

        return op

    def _complete_signal(
        self, txn: Txn, target_id: str, signal_index: int, result: e.Result, fx: Effects
    ) -> CompleteSignalOutcome:
        record = txn.get_invocation(target_id)
        if record is None:
            return CompleteSignalOutcome.NOT_FOUND
        if txn.signal_completed(target_id, signal_index):
            return CompleteSignalOutcome.ALREADY_COMPLETED
        if record.is_completed:
            return CompleteSignalOutcome.INVOCATION_COMPLETED
        txn.mark_signal_completed(target_id, signal_index)
        self._send_to(txn, target_id, e.Signal(signal_index=signal_index, result=result), fx)
        return CompleteSignalOutcome.DONE

    # ------------------------------------------------------------ workflow promises

    def _get_promise(self, txn: Txn, record: InvocationRecord, name: str, completion_id: int, fx: Effects) -> None:
        service, key = record.target.service, typing.cast(str, record.target.key)
        promise = txn.get_promise(service, key, name)
        if promise is not None:
            self._send_to(txn, record.id, e.Completion(completion_id=completion_id, result=promise.result), fx)
        else:
            txn.add_promise_waiter(service, key, name, self.seq.next(), ReplyTo(record.id, completion_id))

    def _complete_promise(
        self, txn: Txn, service: str, key: str, name: str, result: bytes | e.Failure, fx: Effects
    ) -> e.Failure | None:
        if txn.get_promise(service, key, name) is not None:
            return e.Failure(409, f"the promise '{name}' of {service}/{key} is already completed")
        txn.put_promise(service, key, name, PromiseRecord(result))
        for waiter in txn.take_promise_waiters(service, key, name):
            self._send_to(txn, waiter.invocation_id, e.Completion(completion_id=waiter.completion_id, result=result), fx)
        return None

    # ------------------------------------------------------------ ending invocations

    def complete(self, invocation_id: str, index: int, output: e.Output, now_ms: int) -> Op:
        """Record the Output and finish the invocation: reply, free the key, schedule the purge."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            record = txn.get_invocation(invocation_id)
            if record is None or record.is_completed:
                return Applied(False, fx)
            self._check_holds_key(txn, record)
            self._check_next_index(txn, invocation_id, index)
            txn.put_entry(invocation_id, index, output)
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
            purge = TimerKey(now_ms + record.retention_ms, record.id, TimerKind.PURGE)
            txn.put_timer(purge)
            fx.timers.append(purge)
        fx.completed.append((record.id, result))

    def _leave_inbox(self, txn: Txn, record: InvocationRecord, now_ms: int, fx: Effects) -> None:
        """Free the key: the next queued exclusive invocation takes it."""
        service, key = record.target.service, typing.cast(str, record.target.key)
        head = txn.inbox_head(service, key)
        txn.inbox_remove(service, key, record.inbox_seq)
        fx.released.append(record)
        if head is None or head[1] != record.id:
            return  # it was not holding the key (a queued invocation killed or cancelled)
        following = txn.inbox_head(service, key)
        if following is None:
            return
        nxt = txn.get_invocation(following[1])
        if nxt is not None and nxt.status == Status.PENDING:
            nxt.status = Status.READY
            nxt.modified_ms = now_ms
            txn.put_invocation(nxt)
            fx.start.append((nxt, None))

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
            self._finish(txn, record, e.Failure(500, f"durio cannot read this invocation's journal: {reason}"), now_ms, fx)
            return Applied(True, fx)

        return op

    def suspend(self, invocation_id: str, awaiting: list[str], now_ms: int, journal_length: int | None = None) -> Op:
        """Suspend, unless the stored journal has grown past the `journal_length` entries the actor has seen
        (something it waits for may be there): then the value is STALE_JOURNAL and nothing changes."""

        def op(txn: Txn) -> Applied:
            record = txn.get_invocation(invocation_id)
            if record is None or record.is_completed or _ran_ahead(record):
                return Applied(False, Effects())
            if journal_length is not None and txn.has_entry(invocation_id, journal_length):
                return Applied(STALE_JOURNAL, Effects())
            record.status = Status.SUSPENDED
            record.awaiting = awaiting
            record.modified_ms = now_ms
            txn.put_invocation(record)
            return Applied(True, Effects())

        return op

    def attempt_failed(
        self, invocation_id: str, retry_count: int, failure: dict, next_retry_ms: int, pause: bool, now_ms: int
    ) -> Op:
        """Remember a failed attempt: the retry count, the last failure, and when the next attempt runs."""

        def op(txn: Txn) -> Applied:
            record = txn.get_invocation(invocation_id)
            if record is None or record.is_completed or _ran_ahead(record):
                return Applied(False, Effects())
            record.retry_count = retry_count
            record.last_failure = failure
            record.next_retry_ms = next_retry_ms
            record.status = Status.PAUSED if pause else Status.BACKING_OFF
            record.paused_reason = "retries exhausted" if pause else None
            record.modified_ms = now_ms
            txn.put_invocation(record)
            txn.add_event(invocation_id, self.seq.next(), dict(failure, kind="attempt_failed", retry_count=retry_count))
            return Applied(True, Effects())

        return op

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

    # ------------------------------------------------------------ operator actions

    def _cancel(self, txn: Txn, record: InvocationRecord, now_ms: int, fx: Effects, source_id: str | None = None) -> ControlOutcome:
        """Cancel: not started yet, it ends at once; otherwise a cancel signal unwinds the handler."""
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

    def _on_invocation(self, invocation_id: str, act: typing.Callable[[Txn, InvocationRecord, Effects], ControlOutcome]) -> Op:
        """An operator action on an unfinished invocation: 'not_found' or 'completed' otherwise."""

        def op(txn: Txn) -> Applied:
            fx = Effects()
            record = txn.get_invocation(invocation_id)
            if record is None:
                return Applied(ControlOutcome.NOT_FOUND, fx)
            if record.is_completed:
                return Applied(ControlOutcome.COMPLETED, fx)
            return Applied(act(txn, record, fx), fx)

        return op

    def cancel(self, invocation_id: str, now_ms: int) -> Op:
        return self._on_invocation(invocation_id, lambda txn, record, fx: self._cancel(txn, record, now_ms, fx))

    def kill(self, invocation_id: str, now_ms: int) -> Op:
        """Complete at once with 'killed', and kill every call it is still waiting for."""

        def kill(txn: Txn, record: InvocationRecord, fx: Effects) -> ControlOutcome:
            self._kill(txn, record, now_ms, fx, seen=set())
            return ControlOutcome.DONE

        return self._on_invocation(invocation_id, kill)

    def _kill(self, txn: Txn, record: InvocationRecord, now_ms: int, fx: Effects, seen: set[str]) -> None:
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
                    self._kill(txn, child, now_ms, fx, seen)

    def pause(self, invocation_id: str, now_ms: int) -> Op:
        """Stop retrying: a running invocation stops its attempt and waits for `resume`."""

        def pause(txn: Txn, record: InvocationRecord, fx: Effects) -> ControlOutcome:
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

        return self._on_invocation(invocation_id, pause)

    def resume(self, invocation_id: str, now_ms: int) -> Op:
        """Run a paused or suspended invocation now (a backing-off one retries at once)."""

        def resume(txn: Txn, record: InvocationRecord, fx: Effects) -> ControlOutcome:
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

        return self._on_invocation(invocation_id, resume)

    def purge(self, invocation_id: str) -> Op:
        """Forget a completed invocation: its record, journal and, for a workflow run, the workflow's state."""

        def op(txn: Txn) -> Applied:
            record = txn.get_invocation(invocation_id)
            if record is None:
                return Applied(ControlOutcome.NOT_FOUND, Effects())
            if not record.is_completed:
                return Applied(ControlOutcome.NOT_COMPLETED, Effects())
            txn.delete_invocation(invocation_id)
            txn.delete_journal(invocation_id)
            txn.delete_events(invocation_id)
            txn.delete_signals(invocation_id)
            txn.delete_timer(TimerKey(record.completed_ms + record.retention_ms, record.id, TimerKind.PURGE))
            if record.is_workflow_run and record.target.key is not None:
                txn.clear_all_state(record.target.service, record.target.key)
                txn.clear_promises(record.target.service, record.target.key)
            return Applied(ControlOutcome.DONE, Effects())

        return op

    def save_deployment(self, record: dict, replaces: str | None) -> Op:
        def op(txn: Txn) -> Applied:
            if replaces is not None and replaces != record["id"]:
                txn.delete_deployment(replaces)
            txn.put_deployment(record["id"], record)
            return Applied(True, Effects())

        return op

    def purge_expired(self, invocation_id: str, timer: TimerKey) -> Op:
        """The retention timer of a completed invocation fired."""
        purge = self.purge(invocation_id)

        def op(txn: Txn) -> Applied:
            txn.delete_timer(timer)
            return purge(txn)

        return op


def _ran_ahead(record: InvocationRecord) -> bool:
    """An exclusive invocation still queued for its key in storage, whose actor was handed the key early.

    What its attempt did counts for nothing until its predecessor's completion commits: its writes
    are refused, and so is any change to its status. Marked backing-off or suspended, it would load
    as if it held the key, with the key's state as it was before its predecessor's writes.
    """
    return record.status == Status.PENDING


def _command_target(entry: e.Entry) -> str | None:
    """The invocation a journaled command reads and changes other than its own (None: only its own)."""
    if isinstance(entry, e.CompleteAwakeable):
        try:
            return parse_awakeable_id(entry.awakeable_id)[0]
        except InvalidId:
            return None
    if isinstance(entry, (e.SendSignal, e.SendNamedSignal, e.AttachInvocation, e.GetInvocationOutput)):
        return entry.target_invocation_id
    return None
