"""Named databases and their key layouts, chosen for range scans.

Strings inside keys are length-prefixed, so no separator byte can be forged by
a key that contains it. Integers are big-endian, so byte order is numeric
order. Invocation ids are their 24 raw bytes.
"""

from __future__ import annotations

import struct

import msgpack

from durio.ids import ID_BYTES, invocation_id_from_bytes, invocation_id_to_bytes, partition_key_of
from durio.storage.records import STORED_STATUSES

INVOCATIONS = b"invocations"  # id -> InvocationRecord
JOURNAL = b"journal"  # id + u32 index -> entry
STATE = b"state"  # object(service, key) + name -> value bytes (the handler's serialized value)
INBOX = b"inbox"  # object(service, key) + u64 seq -> id: exclusive invocations in arrival order
TIMERS = b"timers"  # u64 due_ms + id + u8 kind + u32 completion id -> empty
OUTBOX = b"outbox"  # target id + u64 seq -> notification entry not yet in the target's journal
REPLY_TO = b"reply_to"  # callee id + u64 seq -> ReplyTo: who waits for the callee's result
PROMISES = b"promises"  # object(service, key) + name -> completed promise
PROMISE_WAITERS = b"promise_waiters"  # object(service, key) + lp(name) + u64 seq -> ReplyTo
SIGNALS = b"signals"  # id + u32 signal index -> empty: awakeables already completed
EVENTS = b"events"  # id + u64 seq -> attempt failures and other history, for the UI; id + EVENTS_DROPPED_SEQ -> count
DEPLOYMENTS = b"deployments"  # deployment id -> record
SCHEDULES = b"schedules"  # schedule key (24 bytes, derived from the schedule id) -> schedule record
META = b"meta"  # named counters and the schema version
# u16 destination partition + u64 seq -> a cross-partition message (durio.actors.messages) its owner applies
MESSAGES = b"messages"

# The status index: one database per stored status, u64 created_ms + id -> empty. LMDB knows each
# database's entry count, so counting invocations by status is O(1), and listing the newest of a
# status reads only the records it shows. ("running" is never stored: it is what a live actor does.)
STATUS_INDEXES = {status: b"status:" + status.encode() for status in STORED_STATUSES}

ALL_DATABASES = (
    INVOCATIONS,
    JOURNAL,
    STATE,
    INBOX,
    TIMERS,
    OUTBOX,
    REPLY_TO,
    PROMISES,
    PROMISE_WAITERS,
    SIGNALS,
    EVENTS,
    DEPLOYMENTS,
    META,
    *STATUS_INDEXES.values(),
    SCHEDULES,
    MESSAGES,
)

# How long object keys and state or promise names may be, so that every key here fits LMDB's 511 bytes:
# durio/limits.py, a leaf the SDK and the ingress check against before anything reaches storage.

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def id_key(invocation_id: str) -> bytes:
    return invocation_id_to_bytes(invocation_id)


def id_from_key(key: bytes) -> str:
    return invocation_id_from_bytes(bytes(key[:ID_BYTES]))


def status_index_key(created_ms: int, invocation_id: str) -> bytes:
    return _U64.pack(created_ms) + invocation_id_to_bytes(invocation_id)


def id_from_status_index_key(key: bytes) -> str:
    return invocation_id_from_bytes(bytes(key[8 : 8 + ID_BYTES]))


def status_index_value(service: str, handler: str, key: str | None) -> bytes:
    """The target beside each index entry, so listings filtered by target skip the records they do not show."""
    return msgpack.packb((service, handler, key))


def target_from_status_index_value(value: bytes) -> tuple[str, str, str | None] | None:
    """(service, handler, key), or None for an entry written before targets were indexed."""
    if not value:
        return None
    service, handler, key = msgpack.unpackb(value)
    return service, handler, key


def journal_key(invocation_id: str, index: int) -> bytes:
    return invocation_id_to_bytes(invocation_id) + _U32.pack(index)


def journal_index(key: bytes) -> int:
    return _U32.unpack(key[ID_BYTES : ID_BYTES + 4])[0]


def id_seq_key(invocation_id: str, seq: int) -> bytes:
    return invocation_id_to_bytes(invocation_id) + _U64.pack(seq)


# Under this seq (after every real one) an invocation's event count keeps how many events were dropped.
EVENTS_DROPPED_SEQ = (1 << 64) - 1


def events_dropped_key(invocation_id: str) -> bytes:
    return id_seq_key(invocation_id, EVENTS_DROPPED_SEQ)


def seq_of(key: bytes) -> int:
    return _U64.unpack(key[-8:])[0]


def object_prefix(service: str, key: str) -> bytes:
    service_bytes = service.encode()
    key_bytes = key.encode()
    return struct.pack(">H", len(service_bytes)) + service_bytes + _U32.pack(len(key_bytes)) + key_bytes


def service_prefix(service: str) -> bytes:
    service_bytes = service.encode()
    return struct.pack(">H", len(service_bytes)) + service_bytes


def split_object_prefix(key: bytes) -> tuple[str, str, bytes]:
    """(service, key, rest) of a key that starts with object_prefix."""
    (service_len,) = struct.unpack(">H", key[:2])
    service = bytes(key[2 : 2 + service_len]).decode()
    offset = 2 + service_len
    (key_len,) = _U32.unpack(key[offset : offset + 4])
    object_key = bytes(key[offset + 4 : offset + 4 + key_len]).decode()
    return service, object_key, bytes(key[offset + 4 + key_len :])


def state_key(service: str, key: str, name: str) -> bytes:
    return object_prefix(service, key) + name.encode()


def inbox_key(service: str, key: str, seq: int) -> bytes:
    return object_prefix(service, key) + _U64.pack(seq)


def promise_key(service: str, key: str, name: str) -> bytes:
    return object_prefix(service, key) + name.encode()


def promise_waiter_prefix(service: str, key: str, name: str) -> bytes:
    name_bytes = name.encode()
    return object_prefix(service, key) + _U32.pack(len(name_bytes)) + name_bytes


def promise_name_of_waiter(rest: bytes) -> str:
    """The promise name in what follows the object prefix of a promise waiter's key."""
    (length,) = _U32.unpack(rest[:4])
    return rest[4 : 4 + length].decode()


def timer_key(due_ms: int, invocation_id: str, kind: int, completion_id: int) -> bytes:
    return _U64.pack(due_ms) + invocation_id_to_bytes(invocation_id) + bytes((kind,)) + _U32.pack(completion_id)


def parse_timer_key(key: bytes) -> tuple[int, str, int, int]:
    due_ms = _U64.unpack(key[:8])[0]
    invocation_id = invocation_id_from_bytes(bytes(key[8 : 8 + ID_BYTES]))
    kind = key[8 + ID_BYTES]
    completion_id = _U32.unpack(key[9 + ID_BYTES : 13 + ID_BYTES])[0]
    return due_ms, invocation_id, kind, completion_id


def signal_key(invocation_id: str, signal_index: int) -> bytes:
    return invocation_id_to_bytes(invocation_id) + _U32.pack(signal_index)


def message_key(partition: int, seq: int) -> bytes:
    return struct.pack(">HQ", partition, seq)


def parse_message_key(key: bytes) -> tuple[int, int]:
    partition, seq = struct.unpack(">HQ", key)
    return partition, seq


def pack_u64(value: int) -> bytes:
    return _U64.pack(value)


def unpack_u64(raw: bytes) -> int:
    return _U64.unpack(raw)[0]


# Where a row's partition key is: in the id that starts the key, in the id after a timer's due time, or
# the hash of the object key in an object's rows. Messages name their partition outright; the rest
# (deployments, schedules, meta) belongs to no partition.
# A schedule's key starts with its partition key as an invocation id does (durio.schedules.state.schedule_key).
_ID_FIRST = frozenset((INVOCATIONS, JOURNAL, OUTBOX, REPLY_TO, SIGNALS, EVENTS, SCHEDULES))
_OBJECT_ROWS = frozenset((STATE, INBOX, PROMISES, PROMISE_WAITERS))


def row_partition_key(db: bytes, key: bytes) -> int | None:
    """The partition key of a stored row (None: a global row, or a message, which names its partition)."""
    if db in _ID_FIRST:
        return _U64.unpack_from(key)[0]
    if db == TIMERS:
        return _U64.unpack_from(key, 8)[0]
    if db in _OBJECT_ROWS:
        return partition_key_of(split_object_prefix(key)[1])
    return None


def message_partition(key: bytes) -> int:
    return struct.unpack_from(">H", key)[0]
