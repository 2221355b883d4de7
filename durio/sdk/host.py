"""What handler contexts need from the runtime that executes them.

The context turns SDK calls into journal commands; the host (an invocation
actor) persists them, runs `run` steps and waits for notifications. Keeping
this a Protocol keeps sdk/ free of the actor runtime's internals.
"""

from __future__ import annotations

import typing

from durio.journal.entries import Entry, Run, Target
from durio.journal.machine import InvocationMachine
from durio.sdk.definitions import Handler
from durio.sdk.options import RunOptions
from durio.sdk.serde import Serde
from durio.storage.records import InvocationRecord


class InvocationHost(typing.Protocol):
    machine: InvocationMachine
    record: InvocationRecord
    handler: Handler
    # The object's state as this invocation sees it (exclusive: its own writes included).
    state: dict[str, bytes]

    def now_ms(self) -> int: ...

    def due_ms(self, delay_ms: int) -> int:
        """The wall-clock millisecond a timer of `delay_ms` from now is due (never early)."""

    def record_command(self, command: Entry) -> Entry:
        """Issue a command: the stored one while replaying, else appended and persisted."""

    def start_run(self, entry: Run, action: typing.Callable[[], typing.Any], serde: Serde[typing.Any], options: RunOptions[typing.Any]) -> None:
        """Execute a `run` step's action; its result becomes the completion of `entry`."""

    async def wait(self, handles: typing.Collection[int], need_all: bool) -> None:
        """Wait until the journal satisfies the handles (may suspend the invocation)."""

    def kind_of(self, target: "Target") -> str | None:
        """The handler kind of a call target ("exclusive", "shared", "workflow" or None)."""

    def attempt_finished(self) -> typing.Any:
        """An event-like object set when the current attempt ends."""
