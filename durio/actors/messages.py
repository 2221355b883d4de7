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
    # A command of a running invocation about an invocation of another partition (complete an awakeable, send a
    # signal, attach, get an output): its owner performs it, since only it may read and change the target.
    COMMAND = 4


@dataclass(frozen=True, slots=True)
class Message:
    kind: MessageKind
    target_id: str
    now_ms: int
    record: InvocationRecord | None = None
    input_entry: e.Input | None = None
    reply_to: ReplyTo | None = None
    command: e.Entry | None = None  # COMMAND: the command; `record` is then the invocation that journaled it

    def encode(self) -> bytes:
        reply = None if self.reply_to is None else [self.reply_to.invocation_id, self.reply_to.completion_id]
        return pack(
            [
                int(self.kind),
                self.target_id,
                self.now_ms,
                None if self.record is None else pack_record(self.record),
                None if self.input_entry is None else pack_entry(self.input_entry),
                reply,
                None if self.command is None else pack_entry(self.command),
            ]
        )

    @classmethod
    def decode(cls, raw: bytes, what: str) -> "Message":
        kind, target_id, now_ms, record, input_entry, reply, *rest = unpack(raw, what)
        command = rest[0] if rest else None  # messages written before COMMAND existed have six fields
        return cls(
            MessageKind(kind),
            target_id,
            now_ms,
            None if record is None else unpack_record(record, InvocationRecord, f"{what}'s invocation"),
            None if input_entry is None else unpack_entry(input_entry, f"{what}'s input"),  # type: ignore[arg-type]
            None if reply is None else ReplyTo(*reply),
            None if command is None else unpack_entry(command, f"{what}'s command"),
        )
