"""What a committed transition asks the live runtime to do next.

Transitions run inside the writer's transaction, in a worker thread, and may
not touch actors. They describe the consequences instead; the runtime applies
them on the Trio loop once the transaction is durable.
"""

from __future__ import annotations

import itertools
import typing
from dataclasses import dataclass, field

from durio.journal.entries import Entry, Failure, Notification
from durio.storage.records import InvocationRecord, TimerKey


@dataclass(slots=True)
class Effects:
    # Invocations that may run now, with their journal when the transition wrote it whole.
    start: list[tuple[InvocationRecord, list[Entry] | None]] = field(default_factory=list)
    # Exclusive invocations that joined their key's queue behind another one.
    enqueue: list[InvocationRecord] = field(default_factory=list)
    # Outbox messages to hand to their target invocation: (target id, outbox seq, notification).
    deliver: list[tuple[str, int, Notification]] = field(default_factory=list)
    timers: list[TimerKey] = field(default_factory=list)
    # Finished invocations, for whoever waits on them over HTTP.
    completed: list[tuple[str, bytes | Failure]] = field(default_factory=list)
    # Live actors to stop at once (killed, or completed by an operator).
    stop: list[str] = field(default_factory=list)
    # Exclusive invocations that left their key (completed), so the key admits its next one.
    released: list[InvocationRecord] = field(default_factory=list)
    # Partitions of other workers this transition left messages for (durio.actors.messages): their owners are told.
    messages: list[int] = field(default_factory=list)
    created: int = 0  # invocations this transition created
    # Exclusive invocations that took a key whose inbox was empty, with the key's state as the same
    # transaction read it: nothing else is queued on the key yet, so the key actor knows its whole
    # queue from here on (and may hand the key on early), and the holder needs no read of its own.
    fresh_holders: dict[str, dict[str, bytes]] = field(default_factory=dict)


@dataclass(slots=True)
class Applied:
    """A transition's answer plus the effects to apply once it is durable."""

    value: typing.Any
    effects: Effects


class Sequences:
    """Unique, increasing numbers for outbox, inbox, waiter and event keys.

    Transitions may run twice (a batch retried after the map grew), so a
    number is only ever unique, never dense.
    """

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)
        self._last = start - 1

    def next(self) -> int:
        value = next(self._counter)
        self._last = value
        return value

    def peek(self) -> int:
        """The highest number handed out so far."""
        return self._last

    def advance_past(self, used: int) -> None:
        """Never hand out `used` or below: another process sharing the storage has used them."""
        if used > self._last:
            self._counter = itertools.count(used + 1)
            self._last = used
