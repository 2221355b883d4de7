"""Changes that cross partitions: whether one must travel, and leaving it as a message for the partition's owner."""

from __future__ import annotations

from durio.actors.effects import Effects
from durio.actors.messages import Message, MessageKind
from durio.actors.transitions.base import TransitionsBase
from durio.ids import InvalidId, parse_awakeable_id
from durio.journal import entries as e
from durio.storage.records import InvocationRecord
from durio.storage.txn import Txn


class Crossing(TransitionsBase):
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

    def _posted_across(self, txn: Txn, record: InvocationRecord, entry: e.Entry, now_ms: int, fx: Effects) -> bool:
        """Post a command about another partition's invocation to that partition's owner; False if it is ours."""
        target_id = _command_target(entry)
        if target_id is None or not self._crosses(target_id, record.id):
            return False
        self._post(txn, Message(MessageKind.COMMAND, target_id, now_ms, record, command=entry), fx)
        return True


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
