"""The admin API's `POST /query {"query": "SELECT ..."}`: SQL introspection, as Restate's.

The answer is JSON `{"rows": [...]}` (Restate's JSON form; durio does not speak
Arrow IPC), plus `"columns"` in the query's order and `"truncated": true` when
the row limit cut it. A query the engine refuses (bad SQL, unknown table or
column, anything but reading) is a 400 with the engine's message, and so is one
that runs past the time limit (the message names the limit: the query is the
client's to narrow).
"""

from __future__ import annotations

import functools
import typing

from durio.actors.runtime import Runtime
from durio.asgi import HttpError, Receive, Scope, Send, read_body, respond_json
from durio.introspection import DEFAULT_ROW_LIMIT, DEFAULT_TIME_LIMIT_S, QueryError, QuerySnapshot, run_query
from durio.introspection.tables import service_ty
from durio.sdk import serde

MAX_QUERY_BYTES = 64 * 1024


def query_snapshot(runtime: Runtime, live_statuses: typing.Mapping[str, str] | None = None) -> QuerySnapshot:
    """What a query sees besides storage, taken on the event loop at once (nothing here awaits).

    `live_statuses`: of every worker (Runtime.all_live_statuses); by default this one's."""
    services = {
        name: {
            "ty": service_ty(service.kind),
            "revision": 1,
            "deployment_id": getattr(getattr(service, "deployment", None), "id", None),
            "public": not getattr(service, "ingress_private", False),
        }
        for name, service in runtime.registry.services.items()
    }
    deployments = [
        {
            "id": d.id,
            "endpoint": d.uri,
            "created_ms": d.created_ms,
            "min_protocol": d.manifest.get("minProtocolVersion"),
            "max_protocol": d.manifest.get("maxProtocolVersion"),
            "services": [s for s, info in services.items() if info["deployment_id"] == d.id],
        }
        for d in runtime.deployments.values()
    ]
    return QuerySnapshot(
        live_statuses=runtime.live_statuses() if live_statuses is None else live_statuses,
        services=services,
        deployments=deployments,
        tracing=runtime.tracing is not None,
    )


async def serve_query(runtime: Runtime, scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(scope, receive, MAX_QUERY_BYTES)
    try:
        request = serde.loads(body)
    except serde.SerdeError as exc:
        raise HttpError(400, f'the body must be JSON: {{"query": "SELECT ..."}} ({exc})') from None
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        raise HttpError(400, 'the body must name the SQL \'query\': {"query": "SELECT ..."}')
    limit = request.get("limit", DEFAULT_ROW_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= DEFAULT_ROW_LIMIT:
        raise HttpError(400, f"'limit' must be an integer from 1 to {DEFAULT_ROW_LIMIT}")
    snapshot = query_snapshot(runtime, await runtime.all_live_statuses())
    try:
        result = await runtime.store.read(
            functools.partial(
                run_query, snapshot=snapshot, query=request["query"], row_limit=limit, time_limit_s=DEFAULT_TIME_LIMIT_S
            )
        )
    except QueryError as exc:
        raise HttpError(400, str(exc)) from None
    answer: dict[str, typing.Any] = {"rows": result.rows, "columns": result.columns}
    if result.truncated:
        answer["truncated"] = True
    await respond_json(send, 200, answer)
