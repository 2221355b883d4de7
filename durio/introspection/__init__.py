"""SQL introspection: Restate's tables (sys_invocation, sys_journal, state, ...) over durio's storage.

`run_query(txn, snapshot, sql)` answers one read-only SELECT from one LMDB read
transaction. The admin API's `POST /query` and `durio sql` sit on it.
"""

from durio.introspection.engine import (
    DEFAULT_ROW_LIMIT,
    DEFAULT_TIME_LIMIT_S,
    QueryError,
    QueryResult,
    QueryTimeout,
    run_query,
)
from durio.introspection.tables import TABLES, QuerySnapshot

__all__ = [
    "DEFAULT_ROW_LIMIT",
    "DEFAULT_TIME_LIMIT_S",
    "QueryError",
    "QueryResult",
    "QuerySnapshot",
    "QueryTimeout",
    "TABLES",
    "run_query",
]
