"""An exclusive invocation's place in its key's inbox: joining the queue, and leaving it so the next one holds the key."""

from __future__ import annotations

import typing

from durio.actors.effects import Effects
from durio.actors.transitions.base import TransitionsBase
from durio.storage.records import InvocationRecord, Status
from durio.storage.txn import Txn


class KeyInbox(TransitionsBase):
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
