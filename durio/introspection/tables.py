"""The introspection tables: Restate's names and columns, filled from one LMDB read transaction.

Each table names its columns (Restate's, for what durio has; a column durio has
no fact for is NULL) and the columns an equality can be looked up by instead of
scanned (`lookups`, best first). A scan yields rows as mappings from column name
to value; a `LazyRow` computes the costly columns (a journal's size, a caller's
target) only when a query reads them.

Values are SQLite's: text, integers, blobs. Timestamps are UTC text with
milliseconds (`2026-11-30T02:31:45.123Z`), so they sort and compare as text and
SQLite's date functions read them; durations are integers of milliseconds.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, field

from durio.kinds import HandlerKind
from durio import ids
from durio.introspection.journal_rows import JOURNAL_COLUMNS, journal_rows
from durio.introspection.values import LazyRow, key_partition, partition_key, sql_time, utf8_or_none
from durio.journal.entries import Failure, Input
from durio.telemetry.trace_ids import trace_id_hex
from durio.storage import Txn
from durio.storage.frames import FrameError, unpack_entry
from durio.storage.records import STORED_STATUSES, InvocationRecord, Status

Row = typing.Mapping[str, typing.Any]
Equals = dict[str, typing.Any]


@dataclass(frozen=True)
class QuerySnapshot:
    """What a query sees besides storage, taken on the event loop when the query starts."""

    # Statuses live actors show over the stored ones ('running', 'backing-off'), by invocation id.
    live_statuses: typing.Mapping[str, str] = field(default_factory=dict)
    # Registered services: name -> {"ty", "deployment_id", "public", "revision"}.
    services: dict[str, dict[str, typing.Any]] = field(default_factory=dict)
    # Registered deployments: {"id", "endpoint", "created_ms", "min_protocol", "max_protocol", "services"}.
    deployments: list[dict[str, typing.Any]] = field(default_factory=list)
    # Whether the server exports traces: trace_id names the trace of an invocation's spans only then.
    tracing: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    lookups: tuple[tuple[str, ...], ...]  # column sets an equality on all of them narrows the scan to
    scan: typing.Callable[[Txn, QuerySnapshot, Equals], typing.Iterator[Row]]
    estimated_rows: int = 100_000


# ------------------------------------------------------------------ sys_invocation

_SERVICE_TY = {"service": "service", "object": "virtual_object", "workflow": "workflow"}


def _shown_status(record: InvocationRecord, snapshot: QuerySnapshot) -> str:
    """The status the admin API shows: the stored one, refined by what a live actor does."""
    if record.is_completed:
        return str(record.status)
    return snapshot.live_statuses.get(record.id, str(record.status))


@dataclass
class _Invocation:
    """What an invocation row's columns are computed from."""

    txn: Txn
    snapshot: QuerySnapshot
    record: InvocationRecord

    def failure(self, name: str) -> typing.Any:
        return (self.record.last_failure or {}).get(name)

    def caller(self) -> InvocationRecord | None:
        return _record_or_none(self.txn, self.record.caller_id) if self.record.caller_id else None

    def service_ty(self) -> str:
        record = self.record
        service = self.snapshot.services.get(record.target.service)
        if service is not None:
            return typing.cast(str, service["ty"])
        return (
            "workflow"
            if record.handler_kind == HandlerKind.WORKFLOW
            else "virtual_object"
            if record.target.key is not None
            else "service"
        )

    def completion_failure(self) -> str | None:
        result = self.record.result
        return f"[{result.code}] {result.message}" if self.record.is_completed and isinstance(result, Failure) else None

    def completion_result(self) -> str | None:
        if not self.record.is_completed:
            return None
        return "failure" if isinstance(self.record.result, Failure) else "success"

    def trace_id(self) -> str | None:
        if not self.snapshot.tracing:
            return None
        frames = self.txn.raw_journal(self.record.id)[:1]
        try:
            first = unpack_entry(frames[0], f"the input of {self.record.id}") if frames else None
        except FrameError:
            return None
        return trace_id_hex(self.record.id, first.headers) if isinstance(first, Input) else None

    def commands(self) -> int:
        rows = journal_rows(self.record.id, self.txn.raw_journal(self.record.id))
        return sum(1 for row in rows if row["entry_type"].startswith("Command"))


def _none(_: typing.Any) -> None:
    return None


_INVOCATION_FIELDS: dict[str, typing.Callable[[_Invocation], typing.Any]] = {
    "id": lambda i: i.record.id,
    "target": lambda i: str(i.record.target),
    "target_service_name": lambda i: i.record.target.service,
    "target_service_key": lambda i: i.record.target.key,
    "target_handler_name": lambda i: i.record.target.handler,
    "target_service_ty": _Invocation.service_ty,
    "idempotency_key": lambda i: i.record.idempotency_key,
    "invoked_by": lambda i: "service" if i.record.caller_id else "ingress",
    "invoked_by_service_name": lambda i: (caller := i.caller()) and caller.target.service,
    "invoked_by_id": lambda i: i.record.caller_id,
    "invoked_by_subscription_id": _none,
    "invoked_by_target": lambda i: (caller := i.caller()) and str(caller.target),
    "restarted_from": _none,
    "pinned_deployment_id": lambda i: i.record.deployment_id,
    "pinned_service_protocol_version": _none,
    "trace_id": _Invocation.trace_id,
    "journal_size": lambda i: len(i.txn.raw_journal(i.record.id)),
    "journal_commands_size": _Invocation.commands,
    "created_at": lambda i: sql_time(i.record.created_ms),
    "created_using_restate_version": _none,
    "modified_at": lambda i: sql_time(i.record.modified_ms),
    "inboxed_at": _none,
    "scheduled_at": lambda i: sql_time(i.record.created_ms) if i.record.execute_at_ms else None,
    "scheduled_start_at": lambda i: sql_time(i.record.execute_at_ms),
    "running_at": _none,
    "completed_at": lambda i: sql_time(i.record.completed_ms),
    "completion_retention": lambda i: i.record.retention_ms or None,
    "journal_retention": lambda i: i.record.retention_ms or None,
    "suspended_waiting_future_json": lambda i: json.dumps(i.record.awaiting) if i.record.awaiting else None,
    "retry_count": lambda i: i.record.retry_count,
    "last_start_at": _none,
    "next_retry_at": lambda i: sql_time(i.record.next_retry_ms) if i.record.status == Status.BACKING_OFF else None,
    "last_attempt_deployment_id": lambda i: i.record.deployment_id,
    "last_attempt_server": _none,
    "last_failure": lambda i: i.failure("message"),
    "last_failure_error_code": lambda i: None if i.failure("code") is None else str(i.failure("code")),
    "last_failure_related_entry_index": lambda i: i.failure("entry_index"),
    "last_failure_related_entry_name": lambda i: i.failure("entry_name"),
    "last_failure_related_entry_type": lambda i: i.failure("entry_type"),
    "last_failure_related_command_index": lambda i: i.failure("entry_index"),
    "last_failure_related_command_name": lambda i: i.failure("entry_name"),
    "last_failure_related_command_type": lambda i: i.failure("entry_type"),
    "status": lambda i: _shown_status(i.record, i.snapshot),
    "completion_result": _Invocation.completion_result,
    "completion_failure": _Invocation.completion_failure,
}


def _invocation_row(txn: Txn, snapshot: QuerySnapshot, record: InvocationRecord) -> Row:
    return LazyRow(_INVOCATION_FIELDS, _Invocation(txn, snapshot, record))


def _record_or_none(txn: Txn, invocation_id: str) -> InvocationRecord | None:
    try:
        return txn.get_invocation(invocation_id)
    except FrameError:
        return None


def _scan_invocations(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    if "id" in equals:
        invocation_id = equals["id"]
        if isinstance(invocation_id, str) and ids.is_invocation_id(invocation_id):
            record = _record_or_none(txn, invocation_id)
            if record is not None:
                yield _invocation_row(txn, snapshot, record)
        return
    if "status" in equals:
        yield from _scan_invocations_with_status(txn, snapshot, equals["status"])
        return
    for record in txn.iter_invocations():
        yield _invocation_row(txn, snapshot, record)


def _scan_invocations_with_status(txn: Txn, snapshot: QuerySnapshot, status: typing.Any) -> typing.Iterator[Row]:
    """Through the status index, plus what live actors show with this status while stored with another."""
    if not isinstance(status, str):
        return
    seen: set[str] = set()
    if status in STORED_STATUSES:
        records, _ = txn.invocations_by_status((status,))
        for record in records:
            seen.add(record.id)
            if _shown_status(record, snapshot) == status:
                yield _invocation_row(txn, snapshot, record)
    for invocation_id, live_status in snapshot.live_statuses.items():
        if live_status != status or invocation_id in seen:
            continue
        live_record = _record_or_none(txn, invocation_id)
        if live_record is not None and _shown_status(live_record, snapshot) == status:
            yield _invocation_row(txn, snapshot, live_record)


# ------------------------------------------------------------------ sys_journal


def _scan_journal(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    if "id" in equals:
        invocation_id = equals["id"]
        if isinstance(invocation_id, str) and ids.is_invocation_id(invocation_id):
            yield from journal_rows(invocation_id, txn.raw_journal(invocation_id))
        return
    for invocation_id, frames in txn.iter_journals():
        yield from journal_rows(invocation_id, frames)


# ------------------------------------------------------------------ state, inbox, promises, idempotency


def _scan_state(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    service, key = equals.get("service_name"), equals.get("service_key")
    if service is not None and not isinstance(service, str) or key is not None and not isinstance(key, str):
        return
    for service_name, service_key, name, value in txn.iter_state(service, key if service is not None else None):
        name_bytes = name.encode()
        yield {
            "partition_key": key_partition(service_key),
            "service_name": service_name,
            "service_key": service_key,
            "key": name,
            "key_length": len(name_bytes),
            "value_utf8": utf8_or_none(value),
            "value": value,
            "value_length": len(value),
        }


def _scan_inbox(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    for service, key, seq, invocation_id in txn.iter_inboxes():
        record = _record_or_none(txn, invocation_id)
        yield {
            "partition_key": key_partition(key),
            "service_name": service,
            "service_key": key,
            "id": invocation_id,
            "sequence_number": seq,
            "created_at": sql_time(record.created_ms) if record is not None else None,
        }


def _scan_promises(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    completed: set[tuple[str, str, str]] = set()
    for service, key, name, promise in txn.iter_promises():
        completed.add((service, key, name))
        failure = promise.result if isinstance(promise.result, Failure) else None
        value = None if failure is not None else typing.cast(bytes, promise.result)
        yield {
            "partition_key": key_partition(key),
            "service_name": service,
            "service_key": key,
            "key": name,
            "completed": 1,
            "completion_success_value": value,
            "completion_success_value_utf8": utf8_or_none(value),
            "completion_failure": None if failure is None else f"[{failure.code}] {failure.message}",
        }
    pending = {waiter for waiter in txn.iter_promise_waiters() if waiter not in completed}
    for service, key, name in sorted(pending):
        yield {
            "partition_key": key_partition(key),
            "service_name": service,
            "service_key": key,
            "key": name,
            "completed": 0,
            "completion_success_value": None,
            "completion_success_value_utf8": None,
            "completion_failure": None,
        }


def _scan_idempotency(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    """durio derives an idempotent invocation's id from its target and key: its record is the table."""
    for record in txn.iter_invocations():
        if record.idempotency_key is None:
            continue
        target = record.target
        yield {
            "partition_key": partition_key(record.id),
            "service_name": target.service,
            "service_key": target.key,
            "service_handler": target.handler,
            "idempotency_key": record.idempotency_key,
            "invocation_id": record.id,
        }


# ------------------------------------------------------------------ services and deployments (in memory)


def _scan_services(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    for name, service in snapshot.services.items():
        yield {
            "name": name,
            "revision": service.get("revision", 1),
            "public": int(bool(service.get("public", True))),
            "ty": service["ty"],
            "deployment_id": service.get("deployment_id"),
        }


def _scan_deployments(txn: Txn, snapshot: QuerySnapshot, equals: Equals) -> typing.Iterator[Row]:
    for deployment in snapshot.deployments:
        yield {
            "id": deployment["id"],
            "ty": "http",
            "endpoint": deployment["endpoint"],
            "created_at": sql_time(deployment["created_ms"]),
            "min_service_protocol_version": deployment["min_protocol"],
            "max_service_protocol_version": deployment["max_protocol"],
            "services": json.dumps(deployment["services"]),
        }


INVOCATION_COLUMNS = tuple(_INVOCATION_FIELDS)
TABLES: tuple[Table, ...] = (
    Table("sys_invocation", INVOCATION_COLUMNS, (("id",), ("status",)), _scan_invocations),
    Table("sys_journal", JOURNAL_COLUMNS, (("id",),), _scan_journal, estimated_rows=1_000_000),
    Table(
        "state",
        ("partition_key", "service_name", "service_key", "key", "key_length", "value_utf8", "value", "value_length"),
        (("service_name", "service_key"), ("service_name",)),
        _scan_state,
    ),
    Table(
        "sys_inbox",
        ("partition_key", "service_name", "service_key", "id", "sequence_number", "created_at"),
        (),
        _scan_inbox,
        estimated_rows=10_000,
    ),
    Table(
        "sys_promise",
        (
            "partition_key",
            "service_name",
            "service_key",
            "key",
            "completed",
            "completion_success_value",
            "completion_success_value_utf8",
            "completion_failure",
        ),
        (),
        _scan_promises,
        estimated_rows=10_000,
    ),
    Table(
        "sys_idempotency",
        ("partition_key", "service_name", "service_key", "service_handler", "idempotency_key", "invocation_id"),
        (),
        _scan_idempotency,
    ),
    Table("sys_service", ("name", "revision", "public", "ty", "deployment_id"), (), _scan_services, estimated_rows=100),
    Table(
        "sys_deployment",
        ("id", "ty", "endpoint", "created_at", "min_service_protocol_version", "max_service_protocol_version", "services"),
        (),
        _scan_deployments,
        estimated_rows=10,
    ),
)


def service_ty(kind: str) -> str:
    """Restate's service type name for a durio service kind."""
    return _SERVICE_TY.get(kind, kind)
