"""The invocation state machine: replay a stored journal, then record new commands.

Sans-IO: no Trio, no storage, no sockets. The actor around it feeds entries
and notifications in and persists what comes out.

Determinism rests on one rule: a notification becomes visible to handler code
only when the handler waits, and waiting consumes durable notifications
strictly in journal order, stopping as soon as the wait is satisfied. What a
handler observes at each wait is therefore a function of the journal alone,
so a replay takes the same branches as the original run — including which
future "won" a `select` — even if later notifications arrived in between.

Rejected alternative: making every notification visible the moment it is
appended. That makes the outcome of a race depend on task scheduling, which
a replay cannot reproduce.
"""

from __future__ import annotations

import typing

from durio.journal.entries import (
    CANCEL_SIGNAL,
    FIRST_AWAKEABLE_SIGNAL,
    Call,
    Entry,
    Input,
    Notification,
    Result,
    handle_of,
    named_signal_handle,
)


class JournalMismatch(Exception):
    """Replay took a different path than the recorded run: this attempt fails, the invocation retries."""

    def __init__(self, index: int, stored: Entry | None, issued: Entry) -> None:
        self.index = index
        self.stored = stored
        self.issued = issued
        recorded = stored.describe() if stored is not None else "nothing"
        super().__init__(
            f"journal mismatch at entry {index}: on replay the handler issued {issued.describe()}, "
            f"but the journal recorded {recorded} there (the handler's code or its inputs changed "
            "while this invocation was in flight)"
        )


class InvocationMachine:
    """One invocation's journal, replayed and extended.

    Handles: a completion id (positive) or a signal index (negative) names a
    result a command or signal will deliver.
    """

    def __init__(self, entries: list[Entry]) -> None:
        if not entries or not isinstance(entries[0], Input):
            raise ValueError("a journal starts with its Input entry")
        self.entries = entries
        # Entries below this index are durable; notifications past it stay invisible.
        self.durable_length = len(entries)
        self._notified: set[int] = {handle_of(e) for e in entries if not e.is_command}  # type: ignore[arg-type]
        # The names behind the named-signal handles the handler awaited (a remote suspension names them).
        self.signal_names: dict[int, str] = {}
        self.restart()

    def restart(self) -> None:
        """Rewind for a new attempt: the whole journal is replayed from the start."""
        self._command_positions = [i for i, e in enumerate(self.entries) if e.is_command]
        self._next_command = 1  # position 0 is the Input, which the handler never issues
        self._cursor = 0  # next entry to look at when consuming notifications
        self._results: dict[int, Result] = {}
        self._cancel_pending = False
        self.cancellation_given = False  # the handler has been given this attempt's TerminalError(409)
        self.next_completion_id = 1
        self.next_signal_index = FIRST_AWAKEABLE_SIGNAL

    # ------------------------------------------------------------ commands

    @property
    def input(self) -> Input:
        return typing.cast(Input, self.entries[0])

    @property
    def replaying(self) -> bool:
        """True while the handler has not yet issued every recorded command."""
        return self._next_command < len(self._command_positions)

    def allocate_completion_id(self) -> int:
        completion_id = self.next_completion_id
        self.next_completion_id += 1
        return completion_id

    def allocate_signal_index(self) -> int:
        index = self.next_signal_index
        self.next_signal_index += 1
        return index

    def named_signal(self, name: str) -> int:
        """The handle ctx.signal(name) awaits. No command: the signal's notification is all the journal holds."""
        handle = named_signal_handle(name)
        self.signal_names[handle] = name
        return handle

    def record(self, command: Entry) -> tuple[Entry, bool]:
        """Issue a command. Replaying: the stored twin (with its results). Live: appended, new=True."""
        if self._next_command < len(self._command_positions):
            index = self._command_positions[self._next_command]
            stored = self.entries[index]
            if not stored.matches(command):
                raise JournalMismatch(index, stored, command)
            self._next_command += 1
            return stored, False
        self.entries.append(command)
        self._command_positions.append(len(self.entries) - 1)
        self._next_command += 1
        return command, True

    def calls_to_cancel(self) -> list[Call]:
        """The calls a cancellation taken now reaches: issued by this attempt, results not yet seen.

        Only the commands the handler has issued so far count, never the rest of a
        journal being replayed: those came after the cancellation in the first run
        (a compensation's own calls), and cancelling them would make the replay
        issue a command the first run did not.
        """
        issued = (self.entries[i] for i in self._command_positions[: self._next_command])
        return [c for c in issued if isinstance(c, Call) and c.completion_id not in self._results]

    def unreplayed_command(self) -> tuple[int, Entry] | None:
        """The next recorded command the handler has not issued yet, if any."""
        if not self.replaying:
            return None
        index = self._command_positions[self._next_command]
        return index, self.entries[index]

    # ------------------------------------------------------------ notifications

    def has_notification(self, handle: int) -> bool:
        """Whether the journal holds (or is about to hold) the result for this handle."""
        return handle in self._notified

    def append_notification(self, notification: Notification) -> int:
        """Append a notification at the end; it becomes visible once `mark_durable` covers it."""
        self.entries.append(notification)
        self._notified.add(handle_of(notification))
        return len(self.entries) - 1

    def append_command_after_replay(self, command: Entry) -> int:
        """Append a command recorded outside handler code (remote deployments' commands)."""
        self.entries.append(command)
        return len(self.entries) - 1

    def mark_durable(self, length: int) -> None:
        if length > self.durable_length:
            self.durable_length = length

    def is_completed(self, handle: int) -> bool:
        """Whether the handler has already seen this handle's result."""
        return handle in self._results

    def result(self, handle: int) -> Result:
        return self._results[handle]

    def wait(self, handles: typing.Collection[int], need_all: bool) -> bool:
        """Consume durable notifications until the wait is satisfied or a cancellation arrives.

        Returns False when the journal has nothing more to give: the caller waits
        for the next durable notification and calls again.
        """
        while not self._cancel_pending:
            if self._satisfied(handles, need_all):
                return True
            if not self._consume_next():
                return False
        return True

    def cancellation_ahead(self) -> bool:
        """Whether a cancel signal is in the journal that the handler has not been given yet.

        Its next wait raises TerminalError(409), so a step issued now would only run for nothing.
        """
        return -CANCEL_SIGNAL in self._notified and -CANCEL_SIGNAL not in self._results

    def take_cancellation(self) -> bool:
        """True once per cancel signal consumed: the handler must see TerminalError(409) now."""
        pending = self._cancel_pending
        self._cancel_pending = False
        self.cancellation_given = self.cancellation_given or pending
        return pending

    def _satisfied(self, handles: typing.Collection[int], need_all: bool) -> bool:
        results = self._results
        if need_all:
            return all(h in results for h in handles)
        return any(h in results for h in handles)

    def _consume_next(self) -> bool:
        entries = self.entries
        while self._cursor < self.durable_length:
            entry = entries[self._cursor]
            self._cursor += 1
            if entry.is_command:
                continue
            handle = handle_of(entry)  # type: ignore[arg-type]
            if handle in self._results:
                continue  # a duplicate delivery; the first one counts
            self._results[handle] = entry.result  # type: ignore[attr-defined]
            if handle == -CANCEL_SIGNAL:
                self._cancel_pending = True
            return True
        return False

    def has_unconsumed_notifications(self) -> bool:
        """Whether notifications sit in the journal that no wait has consumed yet."""
        return any(not e.is_command for e in self.entries[self._cursor :])
