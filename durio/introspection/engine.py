"""SQL over durio's storage: SQLite (through APSW) with one virtual table per introspection table.

Each query gets a fresh in-memory SQLite connection whose virtual tables read
one LMDB read transaction, so the whole query (joins and subqueries included)
sees one consistent snapshot. SQLite asks each table how it can be read
(xBestIndex); an equality on a lookup column (an invocation id, a status, a
service name) narrows the read to an LMDB point or prefix lookup instead of a
scan, and a column is computed only when the query reads it.

Read-only by construction: the virtual tables have no update method, and an
authorizer refuses everything but reading and calling functions (no ATTACH,
PRAGMA, CREATE, temp tables). A query stops at a deadline (SQLite's progress
handler interrupts it) and returns at most a row limit, saying so.

Rejected: DuckDB (measured in benchmarks/sql_engines.py): it reads Python data
only as whole Arrow tables or data frames, so every query would first copy
every row of the tables it names out of LMDB (no lookup by id or status),
and it brings pyarrow. Python's own sqlite3 module cannot define virtual
tables, so it too would copy everything into a temporary database first.
"""

from __future__ import annotations

import time
import typing
from dataclasses import dataclass

import apsw
import apsw.ext

from durio.introspection.sql_text import SqlTextError, prepare_query
from durio.introspection.tables import TABLES, Equals, QuerySnapshot, Row, Table
from durio.storage import Txn

DEFAULT_ROW_LIMIT = 10_000
DEFAULT_TIME_LIMIT_S = 10.0

# What a read-only query may do; anything else the authorizer refuses.
_ALLOWED_ACTIONS = frozenset({apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE})


class QueryError(Exception):
    """The query is wrong (bad SQL, unknown table or column, not read-only): the engine's message."""


class QueryTimeout(QueryError):
    """The query ran past its time limit."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[dict[str, typing.Any]]
    truncated: bool  # more rows than the limit: only the first `limit` are here


def run_query(
    txn: Txn,
    snapshot: QuerySnapshot,
    query: str,
    *,
    row_limit: int = DEFAULT_ROW_LIMIT,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> QueryResult:
    """Run one read-only SELECT over `txn` (blocking: call it in a worker thread, inside the transaction)."""
    try:
        sql = prepare_query(query)
    except SqlTextError as exc:
        raise QueryError(str(exc)) from None
    if not sql.strip():
        raise QueryError("the query is empty")
    connection = apsw.Connection(":memory:")
    try:
        for table in TABLES:
            module = typing.cast(typing.Any, _Module(table, txn, snapshot))  # APSW's protocol types are stricter than its API
            connection.create_module(table.name, module, eponymous=True, eponymous_only=True, read_only=True)
        connection.authorizer = _authorize
        deadline = time.monotonic() + time_limit_s
        timed_out = False

        def past_deadline() -> bool:
            nonlocal timed_out
            timed_out = time.monotonic() > deadline
            return timed_out

        connection.set_progress_handler(past_deadline, 1000)
        cursor = connection.cursor()
        try:
            # The columns from the prepared statement: a query that finds no rows still names them.
            columns = [name for name, _ in apsw.ext.query_info(connection, sql).description or ()]
            cursor.execute(sql)
            rows: list[dict[str, typing.Any]] = []
            truncated = False
            for values in cursor:
                if len(rows) >= row_limit:
                    truncated = True
                    break
                rows.append(dict(zip(_unique(columns), (_json_value(v) for v in values))))
        except apsw.InterruptError:
            if timed_out:
                raise QueryTimeout(f"the query ran longer than its time limit of {time_limit_s:g} s") from None
            raise
        except apsw.AuthError:
            raise QueryError("the query is refused: only reading queries (SELECT) are allowed") from None
        except apsw.Error as exc:
            raise QueryError(_message(exc)) from None
        return QueryResult(columns=_unique(columns), rows=rows, truncated=truncated)
    finally:
        connection.close()


def _unique(columns: list[str]) -> list[str]:
    """Column names made unique (`id`, `id:1`), so that a row is a JSON object that keeps every value."""
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}:{count}")
    return out


def _json_value(value: typing.Any) -> typing.Any:
    if isinstance(value, bytes):
        return value.hex()  # a blob has no JSON form; hex, as Restate's JSON answers show binary columns
    return value


def _message(exc: BaseException) -> str:
    text = str(exc)
    # APSW prefixes SQLite's message with the exception's name ("SQLError: no such table: x").
    name, _, rest = text.partition(": ")
    return rest if rest and name.endswith("Error") else text


def _authorize(action: int, *args: typing.Any) -> int:
    return apsw.SQLITE_OK if action in _ALLOWED_ACTIONS else apsw.SQLITE_DENY


# ------------------------------------------------------------------ the virtual tables


class _Module:
    """The virtual-table module of one table, bound to this query's transaction and snapshot."""

    def __init__(self, table: Table, txn: Txn, snapshot: QuerySnapshot) -> None:
        self.table, self.txn, self.snapshot = table, txn, snapshot

    def Connect(
        self, connection: typing.Any, modulename: str, databasename: str, tablename: str, *args: typing.Any
    ) -> tuple[str, "_VirtualTable"]:
        columns = ", ".join(f'"{name}"' for name in self.table.columns)
        return f"CREATE TABLE x({columns})", _VirtualTable(self)

    Create = Connect


class _VirtualTable:
    def __init__(self, module: _Module) -> None:
        self.module = module
        self.table = module.table
        self.positions = {name: i for i, name in enumerate(self.table.columns)}

    def BestIndex(self, constraints: typing.Sequence[tuple[int, int]], orderbys: typing.Any) -> typing.Any:
        """Use the best lookup whose columns all have a usable equality; else a scan."""
        equalities: dict[str, int] = {}
        for i, (column, op) in enumerate(constraints):
            if op == apsw.SQLITE_INDEX_CONSTRAINT_EQ and column >= 0:
                equalities.setdefault(self.table.columns[column], i)
        for lookup in self.table.lookups:
            if all(name in equalities for name in lookup):
                used: list[int | None] = [None] * len(constraints)
                for argument, name in enumerate(lookup):
                    used[equalities[name]] = argument  # SQLite checks the constraint again: nothing is omitted
                narrowness = 1 if lookup == ("id",) else 100
                return used, 0, ",".join(lookup), False, float(narrowness)
        return None, 0, "", False, float(self.table.estimated_rows)

    def Open(self) -> "_Cursor":
        return _Cursor(self)

    def Disconnect(self) -> None:
        pass

    Destroy = Disconnect


class _Cursor:
    def __init__(self, table: _VirtualTable) -> None:
        self.table = table
        self.rows: typing.Iterator[Row] = iter(())
        self.row: Row | None = None
        self.rowid = 0

    def Filter(self, indexnum: int, indexname: str, constraintargs: typing.Sequence[typing.Any]) -> None:
        names = indexname.split(",") if indexname else []
        equals: Equals = dict(zip(names, constraintargs))
        module = self.table.module
        self.rows = module.table.scan(module.txn, module.snapshot, equals)
        self.rowid = 0
        self.row = next(self.rows, None)

    def Eof(self) -> bool:
        return self.row is None

    def Rowid(self) -> int:
        return self.rowid

    def Column(self, number: int) -> typing.Any:
        if number < 0:
            return self.rowid
        assert self.row is not None
        return self.row[self.table.table.columns[number]]

    def Next(self) -> None:
        self.rowid += 1
        self.row = next(self.rows, None)

    def Close(self) -> None:
        self.rows = iter(())
