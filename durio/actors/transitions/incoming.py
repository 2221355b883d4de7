"""Messages from other partitions' owners, applied by this one: creating an invocation, cancelling or killing one,
performing a command another partition's invocation journaled about one of this partition's."""

from __future__ import annotations

from durio.actors.effects import Applied, Effects
from durio.actors.messages import Message, MessageKind
from durio.actors.transitions.base import log, op_builder
from durio.actors.transitions.journal_writes import JournalWrites
from durio.actors.transitions.outcomes import Op
from durio.storage.frames import FrameError
from durio.storage.txn import Txn


class IncomingMessages(JournalWrites):
    @op_builder
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
            self._create_or_find(txn, message.record, message.input_entry, message.reply_to, fx)
            return
        if message.kind == MessageKind.COMMAND:
            assert message.record is not None and message.command is not None
            self._perform_across(txn, message.record, message.command, message.now_ms, fx)
            return
        record = txn.get_invocation(message.target_id)
        if record is None or record.is_completed:
            return
        if message.kind == MessageKind.CANCEL:
            self._request_cancel(txn, record, message.now_ms, fx)
        elif message.kind == MessageKind.KILL:
            self._kill_with_callees(txn, record, message.now_ms, fx, seen=set())
