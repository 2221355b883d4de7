"""The admin API (Restate's, on port 9070): invocations, services, state, health."""

from __future__ import annotations

import logging
import typing

from durio import ids
from durio.actors.runtime import Runtime
from durio.ingress.http import HttpError, Receive, Scope, Send, path_segments, respond, respond_json
from durio.ingress.ingress_app import _lifespan
from durio.ingress.views import invocation_json, journal_json
from durio.storage import StorageError

log = logging.getLogger("durio.admin")


async def send_admin_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond_json(send, status, {"message": message, "restate_code": None}, headers)


class AdminApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._dispatch(scope, receive, send)
        except HttpError as exc:
            await send_admin_error(send, exc.status, exc.message, exc.headers)
        except StorageError as exc:
            log.error("storage failed while serving %s: %s", scope.get("path"), exc)
            await send_admin_error(send, 503, f"storage is unavailable: {exc}")

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        segments = path_segments(scope)
        method = scope["method"]
        if segments == ["health"]:
            _require(method, "GET")
            await respond(send, 200)
            return
        if len(segments) == 2 and segments[0] == "invocations":
            _require(method, "GET")
            await self._describe_invocation(send, segments[1])
            return
        raise HttpError(404, f"not found: {scope['path']}")

    async def _describe_invocation(self, send: Send, invocation_id: str) -> None:
        if not ids.is_invocation_id(invocation_id):
            raise HttpError(400, f"The request field 'invocation_id' is invalid: {invocation_id!r} is not an invocation id")

        def load(txn: typing.Any) -> typing.Any:
            record = txn.get_invocation(invocation_id)
            if record is None:
                return None
            return record, txn.journal(invocation_id), txn.events(invocation_id)

        loaded = await self.runtime.store.read(load)
        if loaded is None:
            raise HttpError(404, f"The requested invocation '{invocation_id}' does not exist")
        record, journal, events = loaded
        view = invocation_json(record, self.runtime.live_status(record))
        view["journal"] = journal_json(journal)
        view["events"] = events
        await respond_json(send, 200, view)


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, "method not allowed", [(b"allow", allowed.encode())])
