"""The SQL engine's own guarantees on real LMDB: one snapshot per query, a time limit, lookups instead of scans."""

from __future__ import annotations

import functools
import pathlib

import pytest
import anyio

import durio
from durio.ingress.query_route import query_snapshot
from durio.introspection import QueryError, QueryTimeout, run_query
from durio.introspection.sql_text import prepare_query
from tests.conftest import start_in_process

greeter = durio.Service("Greeter")


@greeter.handler()
async def greet(ctx: durio.Context, name: str) -> str:
    return await ctx.run_typed("hello", lambda: f"hello {name}")


async def sql(server, text: str, **limits) -> list[dict]:  # type: ignore[no-untyped-def]
    runtime = server.runtime
    run = functools.partial(run_query, snapshot=query_snapshot(runtime), query=text, **limits)
    return (await runtime.store.read(run)).rows


async def test_one_query_sees_one_snapshot_while_invocations_are_written(data_dir: pathlib.Path) -> None:
    async with anyio.create_task_group() as nursery:
        server = await start_in_process(nursery, [greeter], data_dir)
        # An invocation's record and its journal's first entry are written in one transaction: in any one
        # snapshot there are exactly as many of each, however many commit while the query runs.
        check = (
            "select (select count(*) from sys_invocation) as invocations, "
            "(select count(*) from sys_journal where index = 0) as inputs, "
            "(select count(*) from sys_invocation) as again"
        )
        done = anyio.Event()

        async def send(i: int) -> None:
            response = await server.ingress.post("/restate/send/Greeter/greet", json=str(i))
            assert response.status_code == 202

        async def write_many() -> None:
            async with anyio.create_task_group() as senders:
                for i in range(150):
                    senders.start_soon(send, i)
            done.set()

        nursery.start_soon(write_many)
        seen = set()
        while not done.is_set():
            [row] = await sql(server, check)
            assert row["invocations"] == row["inputs"] == row["again"], row
            seen.add(row["invocations"])
        [row] = await sql(server, check)
        assert row["invocations"] == row["inputs"] == 150
        assert len(seen) > 1, "the queries ran while invocations were being written"
        nursery.cancel_scope.cancel()


async def test_a_query_past_its_time_limit_stops_with_a_clear_error(data_dir: pathlib.Path) -> None:
    async with anyio.create_task_group() as nursery:
        server = await start_in_process(nursery, [greeter], data_dir)
        endless = "with recursive n(x) as (select 1 union all select x + 1 from n) select count(*) from n"
        with anyio.fail_after(10):
            with pytest.raises(QueryTimeout, match="longer than its time limit of 0.3 s"):
                await sql(server, endless, time_limit_s=0.3)
        nursery.cancel_scope.cancel()


async def test_a_lookup_by_id_reads_one_invocation_not_all(data_dir: pathlib.Path) -> None:
    async with anyio.create_task_group() as nursery:
        server = await start_in_process(nursery, [greeter], data_dir)
        sent = [await server.ingress.post("/restate/send/Greeter/greet", json=str(i)) for i in range(20)]
        target = sent[7].json()["invocationId"]
        plan = await server.runtime.store.read(lambda txn: _plan(txn, f"select * from sys_invocation where id = '{target}'"))
        assert "INDEX 0:id" in plan, plan
        plan = await server.runtime.store.read(
            lambda txn: _plan(
                txn, "select * from sys_journal j join sys_invocation i on i.id = j.id where i.status = 'completed'"
            )
        )
        assert "INDEX 0:status" in plan and "INDEX 0:id" in plan, plan
        rows = await sql(server, f"select id, target from sys_invocation where id = '{target}'")
        assert rows == [{"id": target, "target": "Greeter/greet"}]
        assert await sql(server, "select id from sys_invocation where id = 'not an id'") == []
        nursery.cancel_scope.cancel()


def _plan(txn, text: str) -> str:  # type: ignore[no-untyped-def]
    from durio.introspection.tables import QuerySnapshot

    return "\n".join(str(row["detail"]) for row in run_query(txn, QuerySnapshot(), "explain query plan " + text).rows)


def test_bare_index_is_quoted_and_only_one_statement_is_taken() -> None:
    assert prepare_query("select index, 'index' from t order by index") == 'select "index", \'index\' from t order by "index"'
    assert prepare_query("select j.Index from t -- index\n") == 'select j."index" from t -- index\n'
    assert prepare_query("select 1; -- a comment\n") == "select 1 -- a comment\n"
    with pytest.raises(ValueError, match="one statement at a time"):
        prepare_query("select 1; select 2")


def test_a_pragma_is_refused() -> None:
    from durio.introspection.tables import QuerySnapshot

    with pytest.raises(QueryError, match="only reading"):
        run_query(None, QuerySnapshot(), "pragma table_info(sys_invocation)")  # type: ignore[arg-type]
