"""Domain reads and writes over one LMDB transaction.

Everything above storage/ speaks this vocabulary (invocations, journal,
state, inbox, timers, outbox...), never LMDB keys, so another backend can
take LMDB's place by implementing the same methods.
"""

from __future__ import annotations

import heapq
import logging
import struct
import typing

import lmdb

from durio.ids import ID_BYTES, invocation_id_to_bytes
from durio.journal.entries import Entry, Notification
from durio.storage import schema as s
from durio.storage.frames import FrameError, pack, pack_entry, pack_record, unpack, unpack_entry, unpack_record
from durio.storage.records import InvocationRecord, PromiseRecord, ReplyTo, TimerKey


log = logging.getLogger("durio.storage")

EVENTS_KEPT_AT_EACH_END = 10  # an invocation keeps its first 10 and latest 10 events


def _prefix_scan(cursor: typing.Any, prefix: bytes) -> typing.Iterator[tuple[bytes, bytes]]:
    if not cursor.set_range(prefix):
        return
    for key, value in cursor:
        if not key.startswith(prefix):
            return
        yield key, value


class Txn:
    """One transaction, read-only or read-write. Not thread-safe: one thread owns it."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[bytes, typing.Any]) -> None:
        self._txn = txn
        self._dbs = dbs
        # (status, created_ms) under which each invocation this transaction has seen is in the status index.
        self._indexed: dict[str, tuple[str, int] | None] = {}

    # Transactions are opened with buffers=False, so keys and values are bytes; py-lmdb's stubs
    # also allow memoryview, hence the untyped cursor and the cast.
    def _cursor(self, name: bytes) -> typing.Any:
        return self._txn.cursor(db=self._dbs[name])

    def _get(self, name: bytes, key: bytes) -> bytes | None:
        return typing.cast("bytes | None", self._txn.get(key, db=self._dbs[name]))

    def _put(self, name: bytes, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[name])

    def _delete(self, name: bytes, key: bytes) -> bool:
        return self._txn.delete(key, db=self._dbs[name])

    def _delete_prefix(self, name: bytes, prefix: bytes) -> int:
        cursor = self._cursor(name)
        deleted = 0
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break
                deleted += 1
        return deleted

    # ------------------------------------------------------------ invocations

    def get_invocation(self, invocation_id: str) -> InvocationRecord | None:
        raw = self._get(s.INVOCATIONS, s.id_key(invocation_id))
        if raw is None:
            self._indexed[invocation_id] = None
            return None
        record = unpack_record(raw, InvocationRecord, f"the record of {invocation_id}")
        self._indexed[invocation_id] = (str(record.status), record.created_ms)
        return record

    def put_invocation(self, record: InvocationRecord) -> None:
        indexed = (str(record.status), record.created_ms)
        previous = self._index_entry(record.id)
        if previous != indexed:
            if previous is not None:
                self._delete(s.STATUS_INDEXES[previous[0]], s.status_index_key(previous[1], record.id))
            self._put(s.STATUS_INDEXES[indexed[0]], s.status_index_key(indexed[1], record.id), _index_value(record))
            self._indexed[record.id] = indexed
        self._put(s.INVOCATIONS, s.id_key(record.id), pack_record(record))

    def delete_invocation(self, invocation_id: str) -> None:
        previous = self._index_entry(invocation_id)
        if previous is not None:
            self._delete(s.STATUS_INDEXES[previous[0]], s.status_index_key(previous[1], invocation_id))
        self._indexed[invocation_id] = None
        self._delete(s.INVOCATIONS, s.id_key(invocation_id))

    def _index_entry(self, invocation_id: str) -> tuple[str, int] | None:
        """(status, created_ms) under which the status index lists this invocation, if it does."""
        if invocation_id not in self._indexed:
            try:
                self.get_invocation(invocation_id)
            except FrameError:
                self._indexed[invocation_id] = None  # unreadable: whatever it was indexed as cannot be named
        return self._indexed[invocation_id]

    def iter_invocations(self) -> typing.Iterator[InvocationRecord]:
        """Every readable record; an unreadable one is logged and skipped, never fatal to a scan."""
        for key, raw in self._cursor(s.INVOCATIONS):
            invocation_id = s.id_from_key(key)
            try:
                yield unpack_record(raw, InvocationRecord, f"the record of {invocation_id}")
            except FrameError as exc:
                log.error("skipping an unreadable invocation record: %s", exc)

    def count_by_status(self) -> dict[str, int]:
        """How many invocations are stored with each status, in O(1)."""
        return {status: self._txn.stat(self._dbs[db])["entries"] for status, db in s.STATUS_INDEXES.items()}

    def invocations_by_status(
        self,
        statuses: typing.Iterable[str],
        *,
        newest_first: bool = False,
        start_at: bytes | None = None,
        limit: int | None = None,
        accept: typing.Callable[[InvocationRecord], bool] = lambda record: True,
        accept_target: typing.Callable[[str, str, str | None], bool] | None = None,
    ) -> tuple[list[InvocationRecord], bytes | None]:
        """Records with one of `statuses`, by creation time, read through the status index.

        Newest first, the records come in pages: this returns the ones `accept`
        takes (at most `limit`) and the position where the next page starts
        (pass it as `start_at`), or None when no more are left. Unreadable
        records are logged and skipped. `accept_target(service, handler, key)`
        filters on the index alone, before a record is read; an entry written
        without its target (by an older durio, until the index is rebuilt)
        passes on to `accept`, which must then check the target itself.
        """
        wanted = {str(status) for status in statuses}
        scans = [self._index_entries(status, newest_first, start_at) for status in wanted]
        records: list[InvocationRecord] = []
        for key, value in heapq.merge(*scans, reverse=newest_first):
            if limit is not None and len(records) >= limit:
                return records, key
            if accept_target is not None:
                target = s.target_from_status_index_value(value)
                if target is not None and not accept_target(*target):
                    continue
            invocation_id = s.id_from_status_index_key(key)
            try:
                record = self.get_invocation(invocation_id)
            except FrameError as exc:
                log.error("skipping an unreadable invocation record: %s", exc)
                continue
            if record is not None and str(record.status) in wanted and accept(record):
                records.append(record)
        return records, None

    def count_by_status_and_target(
        self, statuses: typing.Iterable[str], accept_target: typing.Callable[[str, str, str | None], bool]
    ) -> int:
        """How many invocations with one of `statuses` have a target `accept_target` takes: an index scan."""
        count = 0
        for status in {str(status) for status in statuses}:
            for key, value in self._index_entries(status, False, None):
                target = s.target_from_status_index_value(value)
                if target is None:  # indexed by an older durio: read the record
                    try:
                        record = self.get_invocation(s.id_from_status_index_key(key))
                    except FrameError:
                        continue
                    if record is None:
                        continue
                    target = (record.target.service, record.target.handler, record.target.key)
                count += accept_target(*target)
        return count

    def _index_entries(self, status: str, descending: bool, start_at: bytes | None) -> typing.Iterator[tuple[bytes, bytes]]:
        cursor = self._cursor(s.STATUS_INDEXES[status])
        if start_at is None:
            on_key = cursor.last() if descending else cursor.first()
        elif not cursor.set_range(start_at):  # every key is before start_at
            on_key = cursor.last() if descending else False
        elif descending and cursor.key() != start_at:
            on_key = cursor.prev()
        else:
            on_key = True
        while on_key:
            yield bytes(cursor.key()), bytes(cursor.value())
            on_key = cursor.prev() if descending else cursor.next()

    def rebuild_status_index(self) -> int:
        """Index every readable record afresh; returns how many were indexed."""
        for db in s.STATUS_INDEXES.values():
            self._txn.drop(self._dbs[db], delete=False)
        indexed = 0
        for record in self.iter_invocations():
            if str(record.status) in s.STATUS_INDEXES:
                self._put(
                    s.STATUS_INDEXES[str(record.status)], s.status_index_key(record.created_ms, record.id), _index_value(record)
                )
                indexed += 1
        return indexed

    def count_invocations(self) -> int:
        return self._txn.stat(self._dbs[s.INVOCATIONS])["entries"]

    # ------------------------------------------------------------ journal

    def has_entry(self, invocation_id: str, index: int) -> bool:
        return self._get(s.JOURNAL, s.journal_key(invocation_id, index)) is not None

    def put_entry(self, invocation_id: str, index: int, entry: Entry) -> None:
        self._put(s.JOURNAL, s.journal_key(invocation_id, index), pack_entry(entry))

    def journal(self, invocation_id: str) -> list[Entry]:
        prefix = invocation_id_to_bytes(invocation_id)
        entries: list[Entry] = []
        for key, raw in _prefix_scan(self._cursor(s.JOURNAL), prefix):
            index = s.journal_index(key)
            if index != len(entries):
                raise LookupError(f"the journal of {invocation_id} has a gap before entry {index}")
            entries.append(unpack_entry(raw, f"journal entry {index} of {invocation_id}"))
        return entries

    def raw_journal(self, invocation_id: str) -> list[bytes]:
        return [bytes(raw) for _, raw in _prefix_scan(self._cursor(s.JOURNAL), invocation_id_to_bytes(invocation_id))]

    def delete_journal(self, invocation_id: str) -> None:
        self._delete_prefix(s.JOURNAL, invocation_id_to_bytes(invocation_id))

    # ------------------------------------------------------------ state

    def get_state(self, service: str, key: str, name: str) -> bytes | None:
        raw = self._get(s.STATE, s.state_key(service, key, name))
        return None if raw is None else bytes(raw)

    def state_of(self, service: str, key: str) -> dict[str, bytes]:
        prefix = s.object_prefix(service, key)
        return {bytes(k[len(prefix) :]).decode(): bytes(v) for k, v in _prefix_scan(self._cursor(s.STATE), prefix)}

    def set_state(self, service: str, key: str, name: str, value: bytes) -> None:
        self._put(s.STATE, s.state_key(service, key, name), value)

    def clear_state(self, service: str, key: str, name: str) -> None:
        self._delete(s.STATE, s.state_key(service, key, name))

    def clear_all_state(self, service: str, key: str) -> None:
        self._delete_prefix(s.STATE, s.object_prefix(service, key))

    def state_object_keys(self, service: str, limit: int = 1000) -> list[str]:
        """Keys of a service that hold state, in key order."""
        keys: list[str] = []
        for raw_key, _ in _prefix_scan(self._cursor(s.STATE), s.service_prefix(service)):
            _, object_key, _ = s.split_object_prefix(raw_key)
            if not keys or keys[-1] != object_key:
                if len(keys) >= limit:
                    break
                keys.append(object_key)
        return keys

    # ------------------------------------------------------------ inbox (exclusive handlers, per key)

    def inbox_push(self, service: str, key: str, seq: int, invocation_id: str) -> None:
        self._put(s.INBOX, s.inbox_key(service, key, seq), invocation_id_to_bytes(invocation_id))

    def inbox_remove(self, service: str, key: str, seq: int) -> None:
        self._delete(s.INBOX, s.inbox_key(service, key, seq))

    def inbox_head(self, service: str, key: str) -> tuple[int, str] | None:
        """The exclusive invocation holding the key (the oldest queued), if any."""
        prefix = s.object_prefix(service, key)
        for k, v in _prefix_scan(self._cursor(s.INBOX), prefix):
            return s.seq_of(k), s.id_from_key(v)
        return None

    def inbox(self, service: str, key: str) -> list[tuple[int, str]]:
        prefix = s.object_prefix(service, key)
        return [(s.seq_of(k), s.id_from_key(v)) for k, v in _prefix_scan(self._cursor(s.INBOX), prefix)]

    def iter_inboxes(self) -> typing.Iterator[tuple[str, str, int, str]]:
        """(service, key, seq, invocation id) for every queued exclusive invocation."""
        for raw_key, value in self._cursor(s.INBOX):
            service, object_key, rest = s.split_object_prefix(raw_key)
            yield service, object_key, s.unpack_u64(rest), s.id_from_key(value)

    def max_inbox_seq(self) -> int:
        return max((seq for _, _, seq, _ in self.iter_inboxes()), default=0)

    # ------------------------------------------------------------ timers

    def put_timer(self, timer: TimerKey) -> None:
        self._put(s.TIMERS, s.timer_key(timer.due_ms, timer.invocation_id, timer.kind, timer.completion_id), b"")

    def delete_timer(self, timer: TimerKey) -> None:
        self._delete(s.TIMERS, s.timer_key(timer.due_ms, timer.invocation_id, timer.kind, timer.completion_id))

    def timers_from(self, due_ms: int, limit: int) -> list[TimerKey]:
        """The earliest timers due at or after `due_ms`."""
        cursor = self._cursor(s.TIMERS)
        found: list[TimerKey] = []
        if cursor.set_range(s.pack_u64(due_ms)):
            for key in cursor.iternext(keys=True, values=False):
                found.append(TimerKey(*s.parse_timer_key(key)))
                if len(found) >= limit:
                    break
        return found

    # ------------------------------------------------------------ outbox

    def put_outbox(self, target_id: str, seq: int, notification: Notification) -> None:
        self._put(s.OUTBOX, s.id_seq_key(target_id, seq), pack_entry(notification))

    def delete_outbox(self, target_id: str, seq: int) -> None:
        self._delete(s.OUTBOX, s.id_seq_key(target_id, seq))

    def iter_outbox(self) -> typing.Iterator[tuple[str, int, Notification]]:
        for key, raw in self._cursor(s.OUTBOX):
            target_id = s.id_from_key(key)
            seq = s.seq_of(key)
            try:
                yield target_id, seq, unpack_entry(raw, f"outbox message {seq} for {target_id}")  # type: ignore[misc]
            except FrameError as exc:
                log.error("skipping an unreadable outbox message: %s", exc)

    def outbox_of(self, invocation_id: str) -> list[tuple[int, Notification]]:
        """The messages waiting for one invocation, in the order they were sent."""
        found = []
        for key, raw in _prefix_scan(self._cursor(s.OUTBOX), invocation_id_to_bytes(invocation_id)):
            seq = s.seq_of(key)
            try:
                found.append((seq, typing.cast(Notification, unpack_entry(raw, f"outbox message {seq} for {invocation_id}"))))
            except FrameError as exc:
                log.error("skipping an unreadable outbox message: %s", exc)
        return found

    def max_outbox_seq(self) -> int:
        return max((s.seq_of(k) for k in self._cursor(s.OUTBOX).iternext(keys=True, values=False)), default=0)

    # ------------------------------------------------------------ messages between partitions

    def put_message(self, partition: int, seq: int, message: bytes) -> None:
        self._put(s.MESSAGES, s.message_key(partition, seq), message)

    def delete_message(self, partition: int, seq: int) -> bool:
        return self._delete(s.MESSAGES, s.message_key(partition, seq))

    def messages_for(self, partition: int, limit: int) -> list[tuple[int, bytes]]:
        """The oldest messages to one partition, (seq, message), in the order they were sent."""
        found: list[tuple[int, bytes]] = []
        for key, raw in _prefix_scan(self._cursor(s.MESSAGES), struct.pack(">H", partition)):
            found.append((s.parse_message_key(key)[1], bytes(raw)))
            if len(found) >= limit:
                break
        return found

    def partitions_with_messages(self) -> set[int]:
        found: set[int] = set()
        cursor = self._cursor(s.MESSAGES)
        if not cursor.first():
            return found
        while True:
            partition = s.parse_message_key(cursor.key())[0]
            found.add(partition)
            if partition == 0xFFFF or not cursor.set_range(struct.pack(">H", partition + 1)):
                return found

    # ------------------------------------------------------------ reply_to: who waits for an invocation

    def add_reply_to(self, callee_id: str, seq: int, reply_to: ReplyTo) -> None:
        self._put(s.REPLY_TO, s.id_seq_key(callee_id, seq), pack([reply_to.invocation_id, reply_to.completion_id]))

    def take_reply_to(self, callee_id: str) -> list[ReplyTo]:
        prefix = invocation_id_to_bytes(callee_id)
        waiting = [
            ReplyTo(*unpack(raw, f"a reply-to of {callee_id}")) for _, raw in _prefix_scan(self._cursor(s.REPLY_TO), prefix)
        ]
        self._delete_prefix(s.REPLY_TO, prefix)
        return waiting

    # ------------------------------------------------------------ promises (workflows)

    def get_promise(self, service: str, key: str, name: str) -> PromiseRecord | None:
        raw = self._get(s.PROMISES, s.promise_key(service, key, name))
        return None if raw is None else PromiseRecord(unpack(raw, f"promise '{name}' of {service}/{key}"))

    def put_promise(self, service: str, key: str, name: str, promise: PromiseRecord) -> None:
        self._put(s.PROMISES, s.promise_key(service, key, name), pack(promise.result))

    def promises_of(self, service: str, key: str) -> dict[str, PromiseRecord]:
        prefix = s.object_prefix(service, key)
        return {
            bytes(k[len(prefix) :]).decode(): PromiseRecord(unpack(v, "a promise"))
            for k, v in _prefix_scan(self._cursor(s.PROMISES), prefix)
        }

    def clear_promises(self, service: str, key: str) -> None:
        self._delete_prefix(s.PROMISES, s.object_prefix(service, key))
        self._delete_prefix(s.PROMISE_WAITERS, s.object_prefix(service, key))

    def add_promise_waiter(self, service: str, key: str, name: str, seq: int, reply_to: ReplyTo) -> None:
        self._put(
            s.PROMISE_WAITERS,
            s.promise_waiter_prefix(service, key, name) + s.pack_u64(seq),
            pack([reply_to.invocation_id, reply_to.completion_id]),
        )

    def take_promise_waiters(self, service: str, key: str, name: str) -> list[ReplyTo]:
        prefix = s.promise_waiter_prefix(service, key, name)
        waiting = [ReplyTo(*unpack(raw, "a promise waiter")) for _, raw in _prefix_scan(self._cursor(s.PROMISE_WAITERS), prefix)]
        self._delete_prefix(s.PROMISE_WAITERS, prefix)
        return waiting

    # ------------------------------------------------------------ completed signals (awakeables)

    def signal_completed(self, invocation_id: str, signal_index: int) -> bool:
        return self._get(s.SIGNALS, s.signal_key(invocation_id, signal_index)) is not None

    def mark_signal_completed(self, invocation_id: str, signal_index: int) -> None:
        self._put(s.SIGNALS, s.signal_key(invocation_id, signal_index), b"")

    def delete_signals(self, invocation_id: str) -> None:
        self._delete_prefix(s.SIGNALS, invocation_id_to_bytes(invocation_id))

    # ------------------------------------------------------------ events (history for humans)

    def add_event(self, invocation_id: str, seq: int, event: dict) -> None:
        """Keep an event; past 2 * EVENTS_KEPT_AT_EACH_END, the oldest of the latest ones is dropped and counted.

        An invocation keeps its first events (how it started failing) and its latest
        (how it fails now): one that retries forever adds an event per attempt, and
        would otherwise grow its history, and its admin answer, without bound.
        """
        self._put(s.EVENTS, s.id_seq_key(invocation_id, seq), pack(event))
        counter = s.events_dropped_key(invocation_id)
        kept = [
            bytes(key)
            for key, _ in _prefix_scan(self._cursor(s.EVENTS), invocation_id_to_bytes(invocation_id))
            if bytes(key) != counter
        ]
        if len(kept) > 2 * EVENTS_KEPT_AT_EACH_END:
            self._delete(s.EVENTS, kept[EVENTS_KEPT_AT_EACH_END])
            self._put(s.EVENTS, counter, pack(self.events_dropped(invocation_id) + 1))

    def events(self, invocation_id: str) -> list[dict]:
        """The kept events, oldest first (the dropped ones were between the first and the latest)."""
        prefix = invocation_id_to_bytes(invocation_id)
        counter = s.events_dropped_key(invocation_id)
        return [
            unpack(raw, f"an event of {invocation_id}")
            for key, raw in _prefix_scan(self._cursor(s.EVENTS), prefix)
            if bytes(key) != counter
        ]

    def events_dropped(self, invocation_id: str) -> int:
        raw = self._get(s.EVENTS, s.events_dropped_key(invocation_id))
        return 0 if raw is None else unpack(raw, f"the dropped-event count of {invocation_id}")

    def delete_events(self, invocation_id: str) -> None:
        self._delete_prefix(s.EVENTS, invocation_id_to_bytes(invocation_id))

    # ------------------------------------------------------------ whole-database scans (SQL introspection)

    def iter_journals(self) -> typing.Iterator[tuple[str, list[bytes]]]:
        """(invocation id, its raw entry frames in order) for every journal, in id order."""
        cursor = self._cursor(s.JOURNAL)
        current: bytes | None = None
        frames: list[bytes] = []
        for key, raw in cursor:
            owner = bytes(key[:ID_BYTES])
            if owner != current:
                if current is not None:
                    yield s.id_from_key(current), frames
                current, frames = owner, []
            frames.append(bytes(raw))
        if current is not None:
            yield s.id_from_key(current), frames

    def iter_state(self, service: str | None = None, key: str | None = None) -> typing.Iterator[tuple[str, str, str, bytes]]:
        """(service, key, name, value) of stored state: all of it, one service's, or one object's."""
        if service is None:
            entries = iter(self._cursor(s.STATE))
        else:
            prefix = s.service_prefix(service) if key is None else s.object_prefix(service, key)
            entries = _prefix_scan(self._cursor(s.STATE), prefix)
        for raw_key, value in entries:
            service_name, object_key, name = s.split_object_prefix(raw_key)
            yield service_name, object_key, name.decode(), bytes(value)

    def iter_promises(self) -> typing.Iterator[tuple[str, str, str, PromiseRecord]]:
        """(workflow, key, promise name, record) of every completed promise."""
        for raw_key, raw in self._cursor(s.PROMISES):
            service, object_key, name = s.split_object_prefix(raw_key)
            yield (
                service,
                object_key,
                name.decode(),
                PromiseRecord(unpack(raw, f"promise '{name.decode()}' of {service}/{object_key}")),
            )

    def iter_promise_waiters(self) -> typing.Iterator[tuple[str, str, str]]:
        """(workflow, key, promise name) for each promise someone waits on (pending ones included)."""
        for raw_key in self._cursor(s.PROMISE_WAITERS).iternext(keys=True, values=False):
            service, object_key, rest = s.split_object_prefix(raw_key)
            yield service, object_key, s.promise_name_of_waiter(rest)

    # ------------------------------------------------------------ deployments and meta

    def put_deployment(self, deployment_id: str, record: dict) -> None:
        self._put(s.DEPLOYMENTS, deployment_id.encode(), pack(record))

    def deployments(self) -> list[dict]:
        return [unpack(raw, "a deployment") for _, raw in self._cursor(s.DEPLOYMENTS)]

    def delete_deployment(self, deployment_id: str) -> None:
        self._delete(s.DEPLOYMENTS, deployment_id.encode())

    # ------------------------------------------------------------ schedules (durio.schedules)

    def get_schedule(self, schedule_key: str) -> dict | None:
        raw = self._get(s.SCHEDULES, s.id_key(schedule_key))
        return None if raw is None else unpack(raw, f"the schedule {schedule_key}")

    def put_schedule(self, schedule_key: str, record: dict) -> None:
        self._put(s.SCHEDULES, s.id_key(schedule_key), pack(record))

    def delete_schedule(self, schedule_key: str) -> None:
        self._delete(s.SCHEDULES, s.id_key(schedule_key))

    def schedules(self) -> list[dict]:
        """Every readable schedule record; an unreadable one is logged and skipped."""
        found = []
        for key, raw in self._cursor(s.SCHEDULES):
            try:
                found.append(unpack(raw, f"the schedule {s.id_from_key(key)}"))
            except FrameError as exc:
                log.error("skipping an unreadable schedule: %s", exc)
        return found

    def get_meta(self, name: str) -> typing.Any:
        raw = self._get(s.META, name.encode())
        return None if raw is None else unpack(raw, f"meta '{name}'")

    def put_meta(self, name: str, value: typing.Any) -> None:
        self._put(s.META, name.encode(), pack(value))


assert ID_BYTES == 24


def _index_value(record: InvocationRecord) -> bytes:
    target = record.target
    return s.status_index_value(target.service, target.handler, target.key)
