"""Messages between partitions: what one partition's transition asks of an invocation another worker owns.

A transition never changes an invocation of a partition owned by another
worker: that worker's actors keep it in memory (its journal, its key's
queue), and only they may move it on. What the transition would have done
there (create a callee, cancel or kill an invocation) it writes instead as a
message to the target's partition, in its own transaction. The owner applies
each message in one of its own transactions, which also deletes it, so a
message is applied exactly once however the processes die. (Notifications,
call results and awakeable completions, already travel as outbox entries that
the target's actor consumes in the same way.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from durio.journal import entries as e
from durio.storage.frames import pack, pack_entry, pack_record, unpack, unpack_entry, unpack_record
from durio.storage.records import InvocationRecord, ReplyTo


class MessageKind(enum.IntEnum):
    INVOKE = 1  # create the invocation (a call or a one-way or delayed send), answering reply_to when it ends
    CANCEL = 2
    KILL = 3


@dataclass(frozen=True, slots=True)
class Message:
    kind: MessageKind
    target_id: str
    now_ms: int
    record: InvocationRecord | None = None
    input_entry: e.Input | None = None
    reply_to: ReplyTo | None = None

    def encode(self) -> bytes:
        reply = None if self.reply_to is None else [self.reply_to.invocation_id, self.reply_to.completion_id]
        return pack([
            int(self.kind), self.target_id, self.now_ms,
            None if self.record is None else pack_record(self.record),
            None if self.input_entry is None else pack_entry(self.input_entry),
            reply,
        ])

    @classmethod
    def decode(cls, raw: bytes, what: str) -> "Message":
        kind, target_id, now_ms, record, input_entry, reply = unpack(raw, what)
        return cls(
            MessageKind(kind), target_id, now_ms,
            None if record is None else unpack_record(record, InvocationRecord, f"{what}'s invocation"),
            None if input_entry is None else unpack_entry(input_entry, f"{what}'s input"),  # type: ignore[arg-type]
            None if reply is None else ReplyTo(*reply),
        )
