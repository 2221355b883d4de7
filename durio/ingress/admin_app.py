"""The admin API (Restate's, on port 9070): services, invocations and their control, state, health.

GET    /health
GET    /services, /services/{name}, /deployments
POST   /deployments {"uri", "use_http_11"?}; DELETE /deployments/{id} (refused while invocations need it)
GET    /invocations?status=&service=&handler=&key=&limit=   newest first; "total": how many show that
                                                            status (live actors included) and target
GET    /invocations/{id}                      status, target, retries, last failure, journal
PATCH  /invocations/{id}/cancel|kill|purge|pause|resume
DELETE /invocations/{id}?mode=cancel|kill|purge (Restate's older form)
GET    /state/{service}/{key}
POST   /query {"query": "SELECT ..."}             SQL introspection (query_route.py)
/schedules...                                 durio.ingress.schedules_api
"""

from __future__ import annotations

import functools
import logging
import typing
from urllib.parse import parse_qs

from durio import ids
from durio.actors.runtime import PeerUnavailable, Runtime
from durio.actors.transitions import ControlAction, ControlOutcome
from durio.asgi import (
    HttpError,
    Receive,
    Scope,
    Send,
    drain,
    path_segments,
    read_body,
    respond,
    respond_json,
    serve_lifespan,
)
from durio.ingress.ingress_app import rfc3339
from durio.ingress.cluster_view import cluster_view
from durio.ingress.cluster_admin import served_by_cluster
from durio.ingress.deployment_routes import checked_use_http_11, serve_deployment_removal
from durio.ingress.query_route import serve_query
from durio.ingress.schedules_api import serve_schedules
from durio.ingress.views import invocation_json, journal_json, service_json, value_json
from durio.actors.remote.deployments import DiscoveryError
from durio.journal.entries import Input
from durio.sdk import serde
from durio.telemetry.trace_ids import trace_id_hex
from durio.storage import StorageError, Txn
from durio.storage.frames import FrameError
from durio.storage.records import STORED_STATUSES, InvocationRecord, Status

log = logging.getLogger("durio.admin")

STATUSES = {str(s) for s in Status}
CONTROL_ACTIONS = frozenset(action.value for action in ControlAction)
# What Restate's deprecated DELETE /invocations/{id}?mode= may ask for.
_DELETE_MODES = (ControlAction.CANCEL, ControlAction.KILL, ControlAction.PURGE)


async def send_admin_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond_json(send, status, {"message": message, "restate_code": None}, headers)


class AdminApp:
    def __init__(self, runtime: Runtime, extra_routes: typing.Callable[..., typing.Awaitable[bool]] | None = None) -> None:
        self.runtime = runtime
        self.extra_routes = extra_routes  # the UI and metrics hook in here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._dispatch(scope, receive, send)
        except HttpError as exc:
            await send_admin_error(send, exc.status, exc.message, exc.headers)
        except StorageError as exc:
            log.error("storage failed while serving %s: %s", scope.get("path"), exc)
            await send_admin_error(send, 503, f"storage is unavailable: {exc}", [(b"retry-after", b"1")])
        except PeerUnavailable as exc:
            await send_admin_error(send, 503, str(exc), [(b"retry-after", b"1")])

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        segments = path_segments(scope)
        method = scope["method"]
        if segments and segments[0] in ("v2", "v3", "v4"):
            segments = segments[1:]  # Restate serves the same API under versioned prefixes
        if self.extra_routes is not None and await self.extra_routes(scope, receive, send, segments):
            return
        if await served_by_cluster(self, self.runtime, scope, receive, send, segments):
            return
        match segments:
            case ["health"]:
                _require(method, "GET")
                await respond(send, 200)
            case ["services"]:
                _require(method, "GET")
                await respond_json(send, 200, {"services": [_service_view(s) for s in self.runtime.registry.services.values()]})
            case ["services", name]:
                _require(method, "GET")
                definition = self.runtime.registry.service(name)
                if definition is None:
                    raise HttpError(404, f"service '{name}' not found")
                await respond_json(send, 200, _service_view(definition))
            case ["deployments"]:
                if method == "POST":
                    await self._register_deployment(scope, receive, send)
                    return
                _require(method, "GET")
                await respond_json(
                    send, 200, {"deployments": [deployment_json(d, self.runtime) for d in self.runtime.deployments.values()]}
                )
            case ["deployments", deployment_id]:
                if method == "DELETE":
                    await serve_deployment_removal(self.runtime, send, deployment_id)
                    return
                _require(method, "GET")
                deployment = self.runtime.deployments.get(deployment_id)
                if deployment is None:
                    raise HttpError(404, f"deployment '{deployment_id}' not found")
                await respond_json(send, 200, deployment_json(deployment, self.runtime, detailed=True))
            case ["invocations"]:
                _require(method, "GET")
                await self._list_invocations(scope, send)
            case ["invocations", invocation_id]:
                if method == "DELETE":
                    await self._delete_invocation(scope, send, invocation_id)
                    return
                _require(method, "GET")
                await self._describe_invocation(send, invocation_id)
            case ["invocations", invocation_id, action] if action in CONTROL_ACTIONS:
                _require(method, "PATCH")
                await drain(receive)
                await self._control(send, invocation_id, ControlAction(action))
            case ["state", service]:
                _require(method, "GET")
                keys = await self.runtime.store.read(lambda txn: txn.state_object_keys(service))
                self._require_known_service(service, bool(keys))
                await respond_json(send, 200, {"service": service, "keys": keys})
            case ["state", service, key]:
                _require(method, "GET")
                await self._state(send, service, key)
            case ["cluster"]:
                _require(method, "GET")
                await respond_json(send, 200, await cluster_view(self.runtime))
            case ["query"]:
                _require(method, "POST")
                await serve_query(self.runtime, scope, receive, send)
            case ["schedules", *rest]:
                await serve_schedules(self.runtime, scope, receive, send, rest)
            case _:
                raise HttpError(404, f"not found: {scope['path']}")

    # ------------------------------------------------------------ deployments

    async def _register_deployment(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, 1024 * 1024)
        try:
            request = serde.loads(body)
        except serde.SerdeError as exc:
            raise HttpError(400, f'the body must be JSON: {{"uri": "http://host:port"}} ({exc})') from None
        if not isinstance(request, dict) or not isinstance(request.get("uri"), str):
            raise HttpError(400, "the body must name the deployment's 'uri'")
        if "arn" in request:
            raise HttpError(400, "AWS Lambda deployments are not supported; register an http:// endpoint")
        headers = request.get("additional_headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise HttpError(400, "'additional_headers' must be an object of strings")
        use_http_11 = checked_use_http_11(request)
        try:
            deployment, created = await self.runtime.register_deployment(request["uri"], headers, use_http_11)
        except DiscoveryError as exc:
            raise HttpError(400, str(exc)) from None
        except ValueError as exc:
            raise HttpError(409, str(exc)) from None
        view = deployment_json(deployment, self.runtime, detailed=True)
        await respond_json(send, 201 if created else 200, view, [(b"location", f"deployments/{deployment.id}".encode())])

    # ------------------------------------------------------------ invocations

    async def _list_invocations(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        status = query.get("status", [None])[0]
        service = query.get("service", [None])[0]
        handler = query.get("handler", [None])[0]
        key = query.get("key", [None])[0]
        try:
            limit = int(query.get("limit", ["100"])[0])
        except ValueError:
            raise HttpError(400, "limit must be an integer") from None
        if status is not None and status not in STATUSES:
            raise HttpError(400, f"unknown status '{status}': one of {', '.join(sorted(STATUSES))}")
        stored = STORED_STATUSES if status is None else tuple(s for s in STORED_STATUSES if s == status)
        # What live actors show over the stored status ('running' is never stored, and a stored 'backing-off',
        # 'ready' or 'suspended' shows as 'running' while an actor runs it), taken once, so that the total and
        # the listing both count what shows the requested status now.
        live = await self.runtime.all_live_statuses()

        def shown(record: InvocationRecord) -> str:
            return str(record.status) if record.is_completed else live.get(record.id, str(record.status))

        def accept_target(target_service: str, target_handler: str, target_key: str | None) -> bool:
            return (
                (service is None or target_service == service)
                and (handler is None or target_handler == handler)
                and (key is None or target_key == key)
            )

        def accept(record: InvocationRecord) -> bool:
            target = record.target
            return accept_target(target.service, target.handler, target.key)

        filtered = service is not None or handler is not None or key is not None

        def live_differences(txn: Txn) -> tuple[list[InvocationRecord], int]:
            """Records that show `status` but are stored under another one (the index scan misses them), and how
            many that the scan counts show another status."""
            extra: list[InvocationRecord] = []
            elsewhere = 0
            for invocation_id, live_status in live.items():
                try:
                    record = txn.get_invocation(invocation_id)
                except FrameError:
                    continue
                if record is None or record.is_completed or not accept(record):
                    continue
                if live_status == status and str(record.status) not in stored:
                    extra.append(record)
                elif live_status != status and str(record.status) in stored:
                    elsewhere += 1
            return extra, elsewhere

        def page(
            txn: Txn, start_at: bytes | None, size: int
        ) -> tuple[list[InvocationRecord], bytes | None, int | None, list[InvocationRecord]]:
            records, next_start = txn.invocations_by_status(
                stored, newest_first=True, start_at=start_at, limit=size, accept=accept, accept_target=accept_target
            )
            if start_at is not None:
                return records, next_start, None, []  # counted with the first page
            if filtered:  # counted on the index alone, not on the records
                counted = txn.count_by_status_and_target(stored, accept_target)
            else:
                counts = txn.count_by_status()
                counted = sum(counts[s] for s in stored)
            if status is None:
                return records, next_start, counted, []  # every live status stands for a stored one: same total
            extra, elsewhere = live_differences(txn)
            return records, next_start, counted - elsewhere + len(extra), extra

        # Newest first, page by page through the status index, so a short list reads only what it shows.
        found: list[InvocationRecord] = []
        extra: list[InvocationRecord] = []
        start_at: bytes | None = None
        size = min(max(limit, 0), 1000) + 16
        total: int | None = None
        while True:
            records, start_at, counted, more = await self.runtime.store.read(
                functools.partial(page, start_at=start_at, size=size)
            )
            # The total as of the first page: pages after it start below what it saw, so invocations created
            # meanwhile are neither listed nor counted.
            if total is None:
                total, extra = counted, more
            found.extend(record for record in records if status is None or shown(record) == status)
            if len(found) >= limit or start_at is None:
                break
        newest_first = sorted([*found[: max(0, limit)], *extra], key=_listing_order, reverse=True)
        views = [invocation_json(record, shown(record)) for record in newest_first[: max(0, limit)]]
        await respond_json(send, 200, {"invocations": views, "total": total})

    def _check_id(self, invocation_id: str) -> None:
        if not ids.is_invocation_id(invocation_id):
            raise HttpError(400, f"The request field 'invocation_id' is invalid: {invocation_id!r} is not an invocation id")

    async def _describe_invocation(self, send: Send, invocation_id: str) -> None:
        self._check_id(invocation_id)

        def load(txn: typing.Any) -> typing.Any:
            record = txn.get_invocation(invocation_id)
            if record is None:
                return None
            try:
                journal, journal_error = txn.journal(invocation_id), None
            except (FrameError, LookupError) as exc:
                journal, journal_error = [], str(exc)
            return record, journal, journal_error, txn.events(invocation_id), txn.events_dropped(invocation_id)

        loaded = await self.runtime.store.read(load)
        if loaded is None:
            raise HttpError(404, f"The requested invocation '{invocation_id}' does not exist")
        record, journal, journal_error, events, events_dropped = loaded
        view = invocation_json(record, await self.runtime.status_shown(record))
        view["journal"] = journal_json(journal)
        if journal_error:
            view["journal_error"] = journal_error
        view["events"] = events
        view["events_dropped"] = events_dropped  # between the first and the latest of `events`
        if self.runtime.tracing is not None and journal and isinstance(journal[0], Input):
            view["trace_id"] = trace_id_hex(record.id, journal[0].headers)  # the trace its spans were exported in
        await respond_json(send, 200, view)

    async def _control(self, send: Send, invocation_id: str, action: ControlAction) -> None:
        self._check_id(invocation_id)
        outcome = await self.runtime.control(invocation_id, action)
        if outcome == ControlOutcome.NOT_FOUND:
            raise HttpError(404, f"The requested invocation '{invocation_id}' does not exist")
        if outcome == ControlOutcome.COMPLETED:
            raise HttpError(409, f"The invocation '{invocation_id}' was already completed.")
        if outcome == ControlOutcome.NOT_COMPLETED:
            raise HttpError(409, f"The invocation '{invocation_id}' is not yet completed.")
        if outcome == ControlOutcome.NOT_RUNNING:
            raise HttpError(409, f"The invocation '{invocation_id}' is not running, cannot be paused.")
        if outcome == ControlOutcome.NOT_STARTED:
            raise HttpError(425, f"The invocation '{invocation_id}' has not started yet, it cannot be resumed.")
        status = 202 if outcome in (ControlOutcome.SIGNALLED, ControlOutcome.PAUSED) else 200
        await respond(send, status)

    async def _delete_invocation(self, scope: Scope, send: Send, invocation_id: str) -> None:
        """Restate's deprecated DELETE: fire and forget, always 202."""
        self._check_id(invocation_id)
        mode = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("mode", ["cancel"])[0]
        if mode not in _DELETE_MODES:
            raise HttpError(400, f"unknown mode '{mode}': cancel, kill or purge")
        await self.runtime.control(invocation_id, ControlAction(mode))
        await respond(send, 202)

    # ------------------------------------------------------------ state

    def _require_known_service(self, service: str, has_state: bool) -> None:
        """A typo in a service name is a 404, not an empty state; stored state is shown even if its service is gone."""
        if not has_state and self.runtime.registry.service(service) is None:
            raise HttpError(404, f"service '{service}' not found")

    async def _state(self, send: Send, service: str, key: str) -> None:
        state = await self.runtime.store.read(lambda txn: txn.state_of(service, key))
        self._require_known_service(service, bool(state))
        await respond_json(
            send,
            200,
            {"service": service, "key": key, "state": {name: value_json(value) for name, value in sorted(state.items())}},
        )


def _listing_order(record: InvocationRecord) -> tuple[int, bytes]:
    return record.created_ms, ids.invocation_id_to_bytes(record.id)  # the status index's order


def _service_view(service: typing.Any) -> dict[str, typing.Any]:
    deployment = getattr(service, "deployment", None)
    return service_json(service, deployment.id if deployment is not None else "embedded")


def deployment_json(deployment: typing.Any, runtime: Runtime, detailed: bool = False) -> dict[str, typing.Any]:
    services = [s for s in runtime.registry.services.values() if getattr(s, "deployment", None) is deployment]
    return {
        "id": deployment.id,
        "uri": deployment.uri,
        "protocol_type": deployment.protocol_type,
        "http_version": deployment.http_version,
        "additional_headers": deployment.additional_headers,
        "created_at": rfc3339(deployment.created_ms),
        "min_protocol_version": deployment.manifest["minProtocolVersion"],
        "max_protocol_version": deployment.manifest["maxProtocolVersion"],
        "sdk_version": deployment.sdk,
        "services": [_service_view(s) if detailed else {"name": s.name, "revision": 1} for s in services],
    }


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"method not allowed: {method}; use {allowed}", [(b"allow", allowed.encode())])
