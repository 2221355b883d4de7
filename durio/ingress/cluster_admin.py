"""The admin API of a cluster node answers for the whole cluster: reads about another node's partitions go there.

Each node's store holds only its own partitions. A read about one invocation or
one object (`GET /invocations/{id}`, `GET /state/{service}/{key}`) is sent to the
node that owns its partition, which answers it from its store; a listing
(`GET /invocations`, `GET /state/{service}`) asks every live node and merges
their answers. The peer runs the same request on its own admin API, marked so
that it answers from its own partitions only. Writes need none of this: the
runtime's verbs (cancel, kill, purge, ...) already run at the owner.

Registering or removing a deployment is done by the node holding the cluster-wide
rows, which has every node reload them.

Only nodes of a cluster on PostgreSQL do this (their peers answer `admin_request`);
the worker processes of one machine share one store and answer everything
themselves.
"""

from __future__ import annotations

import json
import typing
from urllib.parse import parse_qs

import anyio

from durio import ids
from durio.actors.runtime import PeerLost, PeerUnavailable, Runtime
from durio.asgi import Receive, Scope, Send, read_body
from durio.schedules.state import schedule_key

GLOBAL_PARTITION = -1  # the cluster-wide rows' lease (durio.cluster.schema)
# A request a peer node runs for another one: answered from this node's partitions alone.
LOCAL_ONLY = "durio.local_only"
ADMIN_BODY_LIMIT = 1024 * 1024  # as the admin API's own
# How long a listing waits for each node's part before it leaves that node out.
GATHER_TIMEOUT_S = 5.0

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _is_cluster_node(runtime: Runtime) -> bool:
    return hasattr(runtime.peers, "describe_cluster")


AdminApp = typing.Callable[[Scope, Receive, Send], typing.Awaitable[None]]


async def served_by_cluster(
    app: AdminApp, runtime: Runtime, scope: Scope, receive: Receive, send: Send, segments: list[str]
) -> bool:
    """Answer what this node cannot answer alone; False when it can (or it is no cluster node). `app`: this
    node's admin API, which answers a request it has already read the body of."""
    if scope.get(LOCAL_ONLY) or not _is_cluster_node(runtime):
        return False
    path, query = scope["path"], scope.get("query_string", b"").decode("latin-1")
    peers = typing.cast(typing.Any, runtime.peers)
    if segments[:1] == ["deployments"] and scope["method"] in ("POST", "DELETE"):
        # Deployments are cluster-wide rows, written by the node holding them; it has every node reload them.
        if peers.holds(GLOBAL_PARTITION):
            return False
        body = await read_body(scope, receive, ADMIN_BODY_LIMIT)
        await _send(send, await peers.forward_to_owner(GLOBAL_PARTITION, "admin_request", scope["method"], path, query, body))
        return True
    if segments[:1] == ["schedules"]:
        return await _schedules(app, runtime, peers, scope, receive, send, segments[1:], path, query)
    if scope["method"] != "GET":
        return False
    match segments:
        case ["invocations", invocation_id] if ids.is_invocation_id(invocation_id):
            partition = runtime.partitions.of_id(invocation_id)
        case ["state", _, key]:
            partition = runtime.partitions.of_key(ids.partition_key_of(key))
        case ["invocations"]:
            try:
                limit = int(parse_qs(query).get("limit", ["100"])[0])
            except ValueError:
                return False  # this node's own answer says what is wrong with it
            await _send(send, _merge_invocations(await _gather(runtime, path, query), limit))
            return True
        case ["state", service]:
            await _send(send, _merge_state_keys(service, await _gather(runtime, path, query)))
            return True
        case _:
            return False
    if partition in runtime.partitions.owned:
        return False
    await _send(send, await peers.forward_to_owner(partition, "admin_request", "GET", path, query, b""))
    return True


async def _schedules(
    app: AdminApp,
    runtime: Runtime,
    peers: typing.Any,
    scope: Scope,
    receive: Receive,
    send: Send,
    rest: list[str],
    path: str,
    query: str,
) -> bool:
    """A schedule lives in its id's partition: what is about one goes to its owner; the listing asks every node."""
    method = scope["method"]
    if not rest:
        if method == "GET":
            answers = await _gather(runtime, path, query)
            listed = [item for status, _, body in answers if status == 200 for item in json.loads(body)["schedules"]]
            await _send(send, _json(200, {"schedules": sorted(listed, key=lambda item: item.get("id", ""))}))
            return True
        if method != "POST":
            return False
        body = await read_body(scope, receive, ADMIN_BODY_LIMIT)
        try:
            schedule_id = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            schedule_id = None
        if not isinstance(schedule_id, str) or not schedule_id:
            # Whatever is wrong with it, this node's own answer says so.
            await _send(send, await run_admin_request(app, method, path, query, body))
            return True
    else:
        schedule_id = rest[0]
        body = await read_body(scope, receive, ADMIN_BODY_LIMIT)
    partition = runtime.partitions.of_id(schedule_key(schedule_id))
    if partition in runtime.partitions.owned:
        await _send(send, await run_admin_request(app, method, path, query, body))
    else:
        await _send(send, await peers.forward_to_owner(partition, "admin_request", method, path, query, body))
    return True


async def _gather(runtime: Runtime, path: str, query: str) -> list[Answer]:
    answers: list[Answer] = []
    peers = runtime.peers
    assert peers is not None
    for member in peers.members():
        with anyio.move_on_after(GATHER_TIMEOUT_S):
            try:
                answers.append(await peers.forward(member, "admin_request", "GET", path, query, b""))
            except (PeerLost, PeerUnavailable):
                pass  # a node on its way down: its partitions are listed once another node holds them
    return answers


def _merge_invocations(answers: list[Answer], limit: int) -> Answer:
    found: list[dict[str, typing.Any]] = []
    total = 0
    for status, _, body in answers:
        if status != 200:
            return status, [(b"content-type", b"application/json")], body  # the same error every node gives
        part = json.loads(body)
        found.extend(part["invocations"])
        total += part.get("total") or 0
    found.sort(key=lambda view: (view.get("created_at") or "", view["id"]), reverse=True)  # newest first, as each node's
    return _json(200, {"invocations": found[: max(0, limit)], "total": total})


def _merge_state_keys(service: str, answers: list[Answer]) -> Answer:
    keys: set[str] = set()
    for status, _, body in answers:
        if status == 200:
            keys.update(json.loads(body)["keys"])
    if not keys and answers and all(status == 404 for status, _, _ in answers):
        return answers[0]
    return _json(200, {"service": service, "keys": sorted(keys)})


def _json(status: int, value: typing.Any) -> Answer:
    return status, [(b"content-type", b"application/json")], json.dumps(value).encode()


async def _send(send: Send, answer: Answer) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def run_admin_request(app: AdminApp, method: str, path: str, query: str, body: bytes) -> Answer:
    """Run a request on this node's own admin API for a peer, answered from this node's partitions alone."""
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode("latin-1"),
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "http_version": "1.1",
        "scheme": "http",
        "root_path": "",
        LOCAL_ONLY: True,
    }
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    answer = bytearray()

    async def receive() -> dict[str, typing.Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, typing.Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            answer.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, bytes(answer)
