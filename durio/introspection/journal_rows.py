"""sys_journal rows: one per journal entry, with Restate's entry type names.

Restate names a V2 journal entry `Command: Run`, `Command: Call`, ... and the
notification that completes a command after that command (`Notification: Run`);
signals (cancellation, awakeables) are `Notification: Signal`. durio's journal
holds the same commands and notifications, so the names carry over. `raw` is
durio's stored frame (msgpack), not Restate's protobuf; `entry_json` is the
entry as the admin API shows it.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass

from durio.ingress.views import journal_json
from durio.introspection.values import LazyRow, partition_key, sql_time
from durio.journal import entries as e
from durio.storage.frames import FrameError, unpack_entry

_COMMAND_NAMES: dict[type[e.Entry], str] = {
    e.Input: "Input",
    e.Output: "Output",
    e.Run: "Run",
    e.Sleep: "Sleep",
    e.Call: "Call",
    e.OneWayCall: "OneWayCall",
    e.GetState: "GetEagerState",
    e.GetLazyState: "GetLazyState",
    e.GetStateKeys: "GetEagerStateKeys",
    e.GetLazyStateKeys: "GetLazyStateKeys",
    e.SetState: "SetState",
    e.ClearState: "ClearState",
    e.ClearAllState: "ClearAllState",
    e.GetPromise: "GetPromise",
    e.PeekPromise: "PeekPromise",
    e.CompletePromise: "CompletePromise",
    e.CompleteAwakeable: "CompleteAwakeable",
    e.SendSignal: "SendSignal",
    e.SendNamedSignal: "SendSignal",
    e.AttachInvocation: "AttachInvocation",
    e.GetInvocationOutput: "GetInvocationOutput",
}


class _Journal:
    """One invocation's journal, decoded once for all of its rows."""

    def __init__(self, invocation_id: str, frames: list[bytes]) -> None:
        self.invocation_id = invocation_id
        self.frames = frames
        self.entries: list[e.Entry | None] = []
        for index, raw in enumerate(frames):
            try:
                self.entries.append(unpack_entry(raw, f"journal entry {index} of {invocation_id}"))
            except FrameError:
                self.entries.append(None)
        self.command_of: dict[int, e.Entry] = {}
        self.completed_ids: set[int] = set()
        for entry in self.entries:
            completion_id = getattr(entry, "completion_id", None)
            if entry is None or completion_id is None:
                continue
            if entry.is_command:
                self.command_of.setdefault(completion_id, entry)
            elif isinstance(entry, e.Completion):
                self.completed_ids.add(completion_id)
        self._views: list[dict[str, typing.Any]] | None = None
        self._partition: int | None = None

    @property
    def partition(self) -> int:
        if self._partition is None:
            self._partition = partition_key(self.invocation_id)
        return self._partition

    def view(self, index: int) -> dict[str, typing.Any] | None:
        """The entry as the admin API shows it (None if any entry cannot be read: the views pair commands up)."""
        if self._views is None:
            readable = [entry for entry in self.entries if entry is not None]
            self._views = journal_json(readable) if len(readable) == len(self.entries) else []
        return self._views[index] if index < len(self._views) else None


@dataclass
class _Entry:
    journal: _Journal
    index: int

    @property
    def entry(self) -> e.Entry | None:
        return self.journal.entries[self.index]

    def entry_type(self) -> str:
        entry = self.entry
        if entry is None:
            return "Unreadable"
        if isinstance(entry, e.Completion):
            command = self.journal.command_of.get(entry.completion_id)
            return f"Notification: {_COMMAND_NAMES.get(type(command), 'Completion') if command is not None else 'Completion'}"
        if isinstance(entry, (e.Signal, e.NamedSignal)):
            return "Notification: Signal"
        return f"Command: {_COMMAND_NAMES.get(type(entry), type(entry).__name__)}"

    def completed(self) -> int | None:
        entry = self.entry
        if entry is None:
            return None
        if not entry.is_command:
            return 1
        completion_id = getattr(entry, "completion_id", None)
        return None if completion_id is None else int(completion_id in self.journal.completed_ids)

    def entry_json(self) -> str | None:
        view = self.journal.view(self.index)
        return None if view is None else json.dumps(view)


_ENTRY_FIELDS: dict[str, typing.Callable[[_Entry], typing.Any]] = {
    "partition_key": lambda r: r.journal.partition,
    "id": lambda r: r.journal.invocation_id,
    "index": lambda r: r.index,
    "entry_type": _Entry.entry_type,
    "name": lambda r: getattr(r.entry, "name", None) or None,
    "completed": _Entry.completed,
    "invoked_id": lambda r: r.entry.callee_id if isinstance(r.entry, (e.Call, e.OneWayCall)) else None,
    "invoked_target": lambda r: str(r.entry.target) if isinstance(r.entry, (e.Call, e.OneWayCall)) else None,
    "sleep_wakeup_at": lambda r: sql_time(r.entry.wake_up_ms) if isinstance(r.entry, e.Sleep) else None,
    "promise_name": lambda r: r.entry.key if isinstance(r.entry, (e.GetPromise, e.PeekPromise, e.CompletePromise)) else None,
    "raw": lambda r: r.journal.frames[r.index],
    "raw_length": lambda r: len(r.journal.frames[r.index]),
    "version": lambda r: 2,
    "entry_json": _Entry.entry_json,
    "entry_lite_json": lambda r: None,
    "appended_at": lambda r: None if r.entry is None else sql_time(r.entry.ts),
}
JOURNAL_COLUMNS = tuple(_ENTRY_FIELDS)


def journal_rows(invocation_id: str, frames: list[bytes]) -> list[typing.Any]:
    """The rows of one invocation's journal (lazy rows: see tables.LazyRow); an undecodable entry is 'Unreadable'."""
    journal = _Journal(invocation_id, frames)
    return [LazyRow(_ENTRY_FIELDS, _Entry(journal, index)) for index in range(len(frames))]
