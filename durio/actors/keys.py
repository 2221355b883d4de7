"""Key actors: one per active virtual-object key, admitting one exclusive invocation at a time.

Who holds a key is decided durably: the head of the key's inbox in storage
(see transitions). The key actor is its fast path. It knows the invocations
queued behind the holder, in arrival order, and when the holder has recorded
its output it hands the key — and the key's state as the holder left it — to
the next one at once, without waiting for the holder's completion to be
durable and without reading the state back from storage.

That is safe because writes are committed in the order they are submitted:
the successor's first write queues behind its predecessor's completion, and
storage rejects a write from an invocation that does not hold the key. If the
predecessor's completion fails to commit, the successor's writes are refused,
it reloads, finds it does not hold the key yet, and waits.

A key actor only hands the key on early when it knows the key's whole queue:
when it came to life with the first invocation of an empty inbox. One that
came to life later (after a restart, or behind a holder it never saw) does
not know what waits in storage, so it lets each completion's commit admit the
next invocation, until the key falls idle and a fresh actor takes over.

A key actor lives while its key has a holder or a queue; an idle key costs no
memory. Its methods are its mailbox: they run on the Trio loop, one at a time.
"""

from __future__ import annotations

import bisect
import typing

from durio.actors.ports import KeyRouter
from durio.journal.entries import Entry
from durio.storage.records import InvocationRecord


class KeyActor:
    def __init__(self, router: KeyRouter, service: str, key: str, knows_whole_queue: bool) -> None:
        self._router = router
        self.service = service
        self.key = key
        self.knows_whole_queue = knows_whole_queue
        self.holder: str | None = None
        self._queue: list[tuple[int, InvocationRecord]] = []  # (inbox seq, record), in arrival order
        # Handed on with nobody queued: still the key's holder in storage until its completion commits.
        self._completing: set[str] = set()

    @property
    def idle(self) -> bool:
        return self.holder is None and not self._queue and not self._completing

    def statistics(self) -> dict[str, typing.Any]:
        return {"holder": self.holder, "queued": len(self._queue), "knows_whole_queue": self.knows_whole_queue}

    def admit(self, record: InvocationRecord, journal: list[Entry] | None, state: dict[str, bytes] | None = None) -> None:
        """Storage says `record` now holds the key: run it (unless it already runs, handed off early)."""
        self._forget(record.id)
        if self.holder == record.id and self._router.is_alive(record.id):
            return
        self.holder = record.id
        self._router.spawn(record, journal, state=state)

    def enqueue(self, record: InvocationRecord) -> None:
        """`record` waits for the key behind the holder."""
        if record.id == self.holder or any(r.id == record.id for _, r in self._queue):
            return
        bisect.insort(self._queue, (record.inbox_seq, record), key=lambda item: item[0])

    def handoff(self, holder_id: str, state: dict[str, bytes]) -> None:
        """The holder recorded its output: the next queued invocation runs now, with the holder's state."""
        if holder_id != self.holder or not self.knows_whole_queue:
            return
        if not self._queue:
            # Stay alive until the completion commits, so that what arrives meanwhile is known.
            self.holder = None
            self._completing.add(holder_id)
            return
        _, following = self._queue.pop(0)
        self.holder = following.id
        self._router.spawn(following, None, state=dict(state), admitted=True)

    def released(self, invocation_id: str) -> None:
        """An invocation left the key without handing it off (killed, cancelled while queued)."""
        self._forget(invocation_id)
        self._completing.discard(invocation_id)
        if self.holder == invocation_id:
            self.holder = None
        if self.idle:
            self._router.key_idle(self)

    def _forget(self, invocation_id: str) -> None:
        self._queue = [item for item in self._queue if item[1].id != invocation_id]
