"""Which SQL engine for introspection: SQLite virtual tables (what durio uses) against DuckDB, on N invocations.

    .venv/bin/python benchmarks/sql_engines.py [--invocations 100000] [--repeat 3]
    (DuckDB and pyarrow are not durio's dependencies: `pip install duckdb pyarrow` to measure them too)

It writes N invocations straight into a fresh LMDB store in durio's own format
(each with an input, two run steps with their completions and an output; 5%
backing off, 3% suspended), then times the same queries on:

- sqlite-vtab: durio's engine (durio.introspection): SQLite virtual tables over one LMDB read
  transaction, equalities on ids and statuses looked up, not scanned;
- duckdb: DuckDB over Arrow tables built from the same snapshot for each query (DuckDB reads
  Python data only as whole tables: the copy is part of every query's cost), and that query alone;
- sqlite-copy: Python's sqlite3 over an in-memory copy of the named tables (no virtual tables there).

Each figure is the best of --repeat runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sqlite3
import sys
import tempfile
import time
import typing

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from durio import ids  # noqa: E402
from durio.introspection import QuerySnapshot, run_query  # noqa: E402
from durio.introspection.tables import TABLES  # noqa: E402
from durio.journal.entries import Completion, Failure, Input, Output, Run, Target  # noqa: E402
from durio.storage.lmdb_store import LmdbStore  # noqa: E402
from durio.storage.records import InvocationRecord, Status  # noqa: E402

QUERIES = {
    "by id": "select id, target, status, retry_count from sys_invocation where id = '{some_id}'",
    "backing-off": "select id, target, status from sys_invocation where status = 'backing-off'",
    "count by status": "select status, count(*) as n from sys_invocation group by status",
    "journal join": (
        "select i.id, j.index, j.entry_type, j.name from sys_journal j join sys_invocation i on i.id = j.id "
        "where i.status = 'backing-off'"
    ),
    "journal by type": "select entry_type, count(*) as n from sys_journal group by entry_type",
}
# The columns the copies carry (a full copy of all 45 sys_invocation columns would only be slower).
COPIED_COLUMNS = {
    "sys_invocation": ("id", "target", "status", "retry_count"),
    "sys_journal": ("id", "index", "entry_type", "name"),
}


def fill(store: LmdbStore, count: int) -> str:
    """Write `count` invocations; returns one backing-off invocation's id."""
    rng = random.Random(7)
    now = int(time.time() * 1000) - count
    some_id = ""
    batch: list[typing.Callable[[typing.Any], None]] = []
    for n in range(count):
        roll = rng.random()
        status = Status.BACKING_OFF if roll < 0.05 else Status.SUSPENDED if roll < 0.08 else Status.COMPLETED
        invocation_id = ids.new_invocation_id(None, now + n)
        if status is Status.BACKING_OFF and not some_id:
            some_id = invocation_id
        record = InvocationRecord(
            id=invocation_id,
            target=Target("Orders", "process"),
            handler_kind=None,
            status=str(status),
            created_ms=now + n,
            modified_ms=now + n + 5,
            retry_count=3 if status is Status.BACKING_OFF else 0,
            completed_ms=now + n + 5 if status is Status.COMPLETED else 0,
            result=b'"ok"' if status is Status.COMPLETED else None,
            last_failure={"message": "down", "code": 500, "at_ms": now + n} if status is Status.BACKING_OFF else None,
        )
        journal = [
            Input(ts=now + n, value=b'{"order": 1}'),
            Run(ts=now + n, name="reserve", completion_id=1),
            Completion(ts=now + n + 1, completion_id=1, result=b"true"),
            Run(ts=now + n + 2, name="charge", completion_id=2),
        ]
        if status is Status.COMPLETED:
            journal += [Completion(ts=now + n + 3, completion_id=2, result=b"true"), Output(ts=now + n + 5, result=b'"ok"')]
        elif status is Status.BACKING_OFF:
            journal[-1:] = [Run(ts=now + n + 2, name="charge", completion_id=2)]
        else:
            journal += [Completion(ts=now + n + 3, completion_id=2, result=Failure(500, "x"))]

        def op(txn: typing.Any, record: InvocationRecord = record, journal: list = journal) -> None:
            txn.put_invocation(record)
            for index, entry in enumerate(journal):
                txn.put_entry(record.id, index, entry)

        batch.append(op)
        if len(batch) >= 5000:
            store.commit_batch(batch)
            batch = []
    if batch:
        store.commit_batch(batch)
    return some_id


def best_ms(fn: typing.Callable[[], typing.Any], repeat: int) -> tuple[float, typing.Any]:
    """The fastest of `repeat` runs, and what that run returned."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        outcome = fn()
        elapsed = (time.perf_counter() - started) * 1000
        if elapsed < best:
            best, result = elapsed, outcome
    return best, result


def copied_rows(txn: typing.Any, table_name: str) -> list[dict[str, typing.Any]]:
    table = next(t for t in TABLES if t.name == table_name)
    columns = COPIED_COLUMNS[table_name]
    return [{c: row[c] for c in columns} for row in table.scan(txn, QuerySnapshot(), {})]


def named_tables(query: str) -> list[str]:
    return [name for name in COPIED_COLUMNS if name in query]


def duckdb_query(txn: typing.Any, query: str) -> tuple[float, int]:
    import duckdb  # noqa: PLC0415
    import pyarrow  # noqa: PLC0415

    connection = duckdb.connect()
    copy_started = time.perf_counter()
    for name in named_tables(query):
        connection.register(name, pyarrow.Table.from_pylist(copied_rows(txn, name)))
    copy_ms = (time.perf_counter() - copy_started) * 1000
    rows = connection.execute(query).fetchall()
    connection.close()
    return copy_ms, len(rows)


def sqlite_copy_query(txn: typing.Any, query: str) -> int:
    connection = sqlite3.connect(":memory:")
    for name in named_tables(query):
        columns = COPIED_COLUMNS[name]
        connection.execute(f"create table {name} ({', '.join(repr(c) for c in columns)})")
        connection.executemany(
            f"insert into {name} values ({', '.join('?' for _ in columns)})",
            ([row[c] for c in columns] for row in copied_rows(txn, name)),
        )
    rows = connection.execute(query.replace(" j.index", ' j."index"')).fetchall()
    connection.close()
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invocations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import duckdb  # noqa: F401, PLC0415
        import pyarrow  # noqa: F401, PLC0415

        have_duckdb = True
    except ImportError:
        have_duckdb = False
        print("duckdb or pyarrow is not installed: measuring durio's engine and the sqlite3 copy only")
    with tempfile.TemporaryDirectory() as folder:
        store = LmdbStore(pathlib.Path(folder) / "data", sync=False)
        started = time.perf_counter()
        some_id = fill(store, args.invocations)
        print(
            f"wrote {args.invocations:,} invocations in {time.perf_counter() - started:.1f} s ({store.size_bytes() / 1e6:.0f} MB)"
        )
        header = f"{'query':<16} {'sqlite-vtab':>12} {'duckdb':>10} {'(copy)':>10} {'(query)':>9} {'sqlite-copy':>12}  rows"
        print(header)
        for label, template in QUERIES.items():
            query = template.format(some_id=some_id)
            vtab_ms, result = best_ms(
                lambda: store.read(lambda txn: run_query(txn, QuerySnapshot(), query, row_limit=10**7)), args.repeat
            )
            cells = [f"{label:<16}", f"{vtab_ms:>12.1f}"]
            if have_duckdb:
                duck_ms, (copy_ms, duck_rows) = best_ms(lambda: store.read(lambda txn: duckdb_query(txn, query)), args.repeat)
                assert duck_rows == len(result.rows), (label, duck_rows, len(result.rows))
                cells += [f"{duck_ms:>10.1f}", f"{copy_ms:>10.1f}", f"{duck_ms - copy_ms:>9.1f}"]
            else:
                cells += [f"{'-':>10}", f"{'-':>10}", f"{'-':>9}"]
            copy_total_ms, copy_rows = best_ms(lambda: store.read(lambda txn: sqlite_copy_query(txn, query)), args.repeat)
            assert copy_rows == len(result.rows), (label, copy_rows, len(result.rows))
            cells.append(f"{copy_total_ms:>12.1f}")
            print(" ".join(cells) + f"  {len(result.rows):,}")
        store.close()


if __name__ == "__main__":
    main()
