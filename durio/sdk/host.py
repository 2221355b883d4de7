"""What handler contexts and futures need from the runtime that executes them.

The context turns SDK calls into journal commands; the host (an attempt of
durio.sdk.attempt.AttemptHost: in-process, or behind `durio.app`) persists them,
runs `run` steps and waits for notifications. These Protocols are all the SDK
sees of either: the journal as the few verbs it asks of it (JournalView, which
durio.journal.machine.InvocationMachine satisfies) and the invocation as its id,
target and idempotency key (InvocationInfo, which a stored InvocationRecord
satisfies). So sdk/ imports nothing of storage, the actors or the protocol, and
reaches into no private attribute of what implements them.
"""

from __future__ import annotations

import typing

from durio.journal.entries import Entry, Input, Result, Run, Target
from durio.sdk.definitions import Handler
from durio.sdk.options import RunOptions
from durio.sdk.serde import Serde


class JournalView(typing.Protocol):
    """The invocation's journal as the SDK uses it: ids for new commands, and the results it holds."""

    @property
    def input(self) -> Input: ...

    @property
    def replaying(self) -> bool:
        """Whether the handler is still re-issuing commands the journal already holds."""

    def allocate_completion_id(self) -> int: ...

    def allocate_signal_index(self) -> int: ...

    def named_signal(self, name: str) -> int:
        """The handle of the named signal `name` (ctx.signal)."""

    def has_notification(self, handle: int) -> bool:
        """Whether the journal holds the result of `handle`, consumed by the handler or not."""

    def is_completed(self, handle: int) -> bool:
        """Whether the handler has observed the result of `handle` (a replay decides alike)."""

    def result(self, handle: int) -> Result: ...


class InvocationInfo(typing.Protocol):
    """Who the invocation is."""

    @property
    def id(self) -> str: ...

    @property
    def target(self) -> Target: ...

    @property
    def idempotency_key(self) -> str | None: ...


class InvocationHost(typing.Protocol):
    @property
    def machine(self) -> JournalView: ...

    @property
    def record(self) -> InvocationInfo: ...

    @property
    def handler(self) -> Handler: ...

    # The object's state as this invocation sees it (exclusive: its own writes included).
    @property
    def state(self) -> dict[str, bytes]: ...

    @property
    def attempt_headers(self) -> dict[str, str] | None:
        """The headers of the HTTP request that carries this attempt (a remote one); None: the invocation's own."""

    @property
    def partial_state(self) -> bool:
        """Whether `state` holds only part of the state (a remote attempt with lazy state): the rest is asked for."""

    def now_ms(self) -> int: ...

    def due_ms(self, delay_ms: int) -> int:
        """The wall-clock millisecond a timer of `delay_ms` from now is due (never early)."""

    def record_command(self, command: Entry) -> Entry:
        """Issue a command: the stored one while replaying, else appended and persisted."""

    def start_run(
        self, entry: Run, action: typing.Callable[[], typing.Any], serde: Serde[typing.Any], options: RunOptions[typing.Any]
    ) -> None:
        """Execute a `run` step's action; its result becomes the completion of `entry`."""

    async def wait(self, handles: typing.Collection[int], need_all: bool) -> None:
        """Wait until the journal satisfies the handles (may suspend the invocation)."""

    def kind_of(self, target: Target) -> str | None:
        """The handler kind of a call target ("exclusive", "shared", "workflow" or None)."""

    def attempt_finished(self) -> typing.Any:
        """An event-like object set when the current attempt ends."""
