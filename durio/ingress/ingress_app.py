"""The ingress API (Restate 1.7's): call, send, attach, output, awakeables, health.

Paths:
  /restate/call/{svc}[/{key}]/{handler}        call and wait for the result
  /restate/send/{svc}[/{key}]/{handler}        one-way (?delay=10s)
  /{svc}[/{key}]/{handler}[/send]              the older unversioned forms
  /restate/attach/{id}, /restate/output/{id}   wait for / peek a result (470 = not ready)
  /restate/invocation/{id}/attach|output       the older forms of the same
  /restate/invocation/{svc}[/{key}]/{handler}/{idempotencyKey}/attach|output
                                               an idempotent invocation's result, by its target and key
  /restate/workflow/{name}/{key}/attach|output a workflow run's result
  POST /restate/attach|output|lookup           the same by a JSON target (Restate's form):
      {"target": "invocation", "invocationId"}
      {"target": "idempotentInvocation", "service", "key"?, "handler", "idempotencyKey"}
      {"target": "workflow", "workflowName", "workflowKey"}
    lookup answers {"invocationId"} without reading the result.
  /restate/awakeables/{id}/resolve|reject      complete an awakeable
  /restate/health

A handler that is `ingress_private` (its own option, else its service's) is
refused with Restate's 400 "not public" on every path that would start it or
read its result: private means only other services' handlers reach it. (Restate
checks only calls and sends; reading the result is refused too, because a
workflow's run id follows from its key alone.) Awakeables stay open: an
awakeable id is a capability the handler hands out on purpose.
"""

from __future__ import annotations

import datetime
import logging
import typing
from urllib.parse import unquote_plus

from durio.kinds import HandlerKind, ServiceKind
from durio import ids
from durio.actors.runtime import PeerUnavailable, Runtime
from durio.actors.transitions import CompleteSignalOutcome
from durio.durations import BadDuration, parse_duration_ms
from durio.asgi import (
    HttpError,
    Receive,
    Scope,
    Send,
    dumps,
    header,
    path_segments,
    read_body,
    respond,
    respond_json,
    serve_lifespan,
)
from durio.journal.entries import Failure, Target
from durio.sdk import serde
from durio.sdk.definitions import Handler, is_ingress_private
from durio.sdk.errors import ErrorCode
from durio.sdk.invoke import NOT_DECODED
from durio.sdk.serde import SerdeError
from durio.storage import StorageError
from durio.limits import key_problem

log = logging.getLogger("durio.ingress")

DEFAULT_BODY_LIMIT = 32 * 1024 * 1024
NOT_READY_STATUS = int(ErrorCode.NOT_READY)  # an HTTP status too: Restate's "output not ready yet"

# Request headers that describe the HTTP exchange, not the invocation.
_HOP_HEADERS = frozenset({b"host", b"connection", b"content-length", b"idempotency-key", b"transfer-encoding", b"keep-alive"})


def media_type_matches(accept: str, content_type: str) -> bool:
    """Whether a request's Content-Type falls under a handler's `accept` (`type/subtype`, `type/*` or `*/*`).

    Parameters (`; charset=...`) are ignored on both sides; the rest is compared exactly, case included, as
    Restate compares it (it refuses `TEXT/PLAIN` for `text/plain`)."""
    wanted = accept.split(";", 1)[0].strip(" \t")  # HTTP's whitespace only: a stray byte is part of the type
    media = content_type.split(";", 1)[0].strip(" \t")
    if wanted in ("*/*", "*"):
        return True
    if wanted.endswith("/*"):
        return media.startswith(wanted[:-1])
    return media == wanted


def _error_body(status: int, message: str, source: str) -> bytes:
    return dumps({"code": status, "message": message, "source": source})


async def send_error(
    send: Send, status: int, message: str, source: str = "ingress", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(
        send,
        status,
        _error_body(status, message, source),
        headers=[(b"x-restate-error-source", source.encode()), *(headers or ())],
    )


def http_status_of(code: int) -> int:
    """A terminal error's code is its HTTP status when it is one that means failure."""
    return code if 400 <= code <= 599 else 500


def rfc3339(ms: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    except (ValueError, OverflowError, OSError):
        return f"{ms}ms since the epoch"  # beyond what a date can say
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}Z"


class IngressApp:
    """An ASGI app serving the ingress API for one runtime."""

    def __init__(self, runtime: Runtime, *, body_limit: int = DEFAULT_BODY_LIMIT, max_inflight: int = 20_000) -> None:
        self.runtime = runtime
        self.body_limit = body_limit
        self.max_inflight = max_inflight
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.inflight >= self.max_inflight:
            await send_error(send, 429, "too many requests, the ingress is overloaded. Retry later.")
            return
        self.inflight += 1
        try:
            await self._dispatch(scope, receive, send)
        except HttpError as exc:
            await send_error(send, exc.status, exc.message, headers=exc.headers)
        except StorageError as exc:
            log.error("storage failed while serving %s: %s", scope.get("path"), exc)
            await send_error(send, 503, f"storage is unavailable: {exc}", headers=[(b"retry-after", b"1")])
        except PeerUnavailable as exc:
            await send_error(send, 503, str(exc), headers=[(b"retry-after", b"1")])
        finally:
            self.inflight -= 1

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        segments = path_segments(scope)
        method = scope["method"]
        if segments and segments[0] == "restate":
            verb = segments[1] if len(segments) > 1 else ""
            rest = segments[2:]
            if verb in ("call", "send"):
                await self._invoke(scope, receive, send, method, rest, is_send=verb == "send")
            elif verb in ("attach", "output") and len(rest) == 1:
                _require(method, "GET")
                await self._result(send, rest[0], wait=verb == "attach")
            elif verb in ("attach", "output", "lookup") and not rest:
                _require(method, "POST")
                invocation_id = self._target_body_id(await read_body(scope, receive, self.body_limit))
                if verb == "lookup":
                    await respond_json(send, 200, {"invocationId": invocation_id})
                else:
                    await self._result(send, invocation_id, wait=verb == "attach")
            elif verb == "invocation" and len(rest) == 2 and rest[1] in ("attach", "output"):
                _require(method, "GET")
                await self._result(send, rest[0], wait=rest[1] == "attach")
            elif verb == "invocation" and len(rest) in (4, 5) and rest[-1] in ("attach", "output"):
                _require(method, "GET")
                service_name, *key, handler_name, idempotency_key = rest[:-1]
                invocation_id = self._idempotent_id(service_name, key[0] if key else None, handler_name, idempotency_key)
                await self._result(send, invocation_id, wait=rest[-1] == "attach")
            elif verb == "workflow" and len(rest) == 3 and rest[2] in ("attach", "output"):
                _require(method, "GET")
                await self._result(send, self._workflow_id(rest[0], rest[1]), wait=rest[2] == "attach")
            elif verb in ("awakeables", "a") and len(rest) == 2 and rest[1] in ("resolve", "reject"):
                _require(method, "POST")
                await self._complete_awakeable(scope, receive, send, rest[0], resolve=rest[1] == "resolve")
            elif verb == "health" and not rest:
                _require(method, "GET")
                await respond_json(send, 200, {"services": sorted(self.runtime.registry.services)})
            else:
                raise HttpError(404, f"not found: {scope['path']}")
            return
        is_send = len(segments) >= 3 and segments[-1] == "send"
        if is_send:
            # '/{svc}/{handler}/send' or '/{obj}/{key}/{handler}/send'; but '/{obj}/{key}/send' calls a handler named send.
            service = self.runtime.registry.service(segments[0])
            if service is not None and service.kind != ServiceKind.SERVICE and len(segments) == 3:
                is_send = False
        await self._invoke(scope, receive, send, method, segments[:-1] if is_send else segments, is_send)

    # ------------------------------------------------------------ calls and sends

    def _resolve(self, parts: list[str]) -> tuple[Target, Handler]:
        if len(parts) not in (2, 3):
            raise HttpError(400, "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler")
        service = self.runtime.registry.service(parts[0])
        if service is None:
            raise HttpError(404, f"service '{parts[0]}' not found, make sure to register the service before calling it.")
        handler_name = parts[-1]
        handler = service.handlers.get(handler_name)
        if handler is None:
            raise HttpError(404, f"the service '{parts[0]}' exists, but the handler '{handler_name}' was not found.")
        self._require_public(handler)
        if service.kind == ServiceKind.SERVICE:
            if len(parts) != 2:
                raise HttpError(400, f"'{parts[0]}' is a service: call it as /{parts[0]}/{handler_name}, without a key")
            return Target(service.name, handler_name), handler
        if len(parts) != 3:
            raise HttpError(400, f"'{parts[0]}' is keyed: call it as /{parts[0]}/<key>/{handler_name}")
        problem = key_problem(parts[1])
        if problem is not None:
            raise HttpError(400, f"bad key: {problem}")
        return Target(service.name, handler_name, parts[1]), handler

    def _require_public(self, handler: Handler) -> None:
        if is_ingress_private(self.runtime.registry.service(handler.service_name), handler):
            raise HttpError(
                400,
                f"the invoked service is not public: {handler.service_name}/{handler.name} is ingress-private, "
                "only other services' handlers may invoke it or read its result",
            )

    @staticmethod
    def _check_content_type(handler: Handler, scope: Scope) -> None:
        """A request's content type must be one the handler accepts (its `accept`), as Restate checks it: 400 if not.

        Unlike Restate, a request without a content type is read anyway (Restate: 400 `Empty content-type`),
        and so is a body sent to a handler that takes none: durio's clients and curl lines have long done both."""
        given = header(scope, b"content-type")
        accept = getattr(handler, "accept", None)
        if given is None or not accept or not handler.takes_input:
            return
        text = given.decode("latin-1")
        if not media_type_matches(accept, text):
            raise HttpError(400, f"input validation error: Content-type '{text}' does not match '{accept}'")

    def _validate_input(self, handler: Handler, body: bytes) -> typing.Any:
        """The decoded input (handed to the first attempt, so it is not decoded twice); 400 if it does not fit."""
        if not handler.takes_input:
            return NOT_DECODED
        if not body:
            if handler.input_required:
                raise HttpError(400, f"{handler.service_name}.{handler.name} needs a JSON body, and the request has none")
            return None
        if getattr(handler, "deployment", None) is not None:
            # A remote handler's body goes to its deployment as it is, as Restate passes it: the deployment
            # reads it (and answers 400 itself). It may not even be JSON to anyone but the deployment: a
            # journal value codec encodes it in the client (durio.protocol.value_codec).
            return NOT_DECODED
        try:
            return handler.input_serde.deserialize(body)
        except SerdeError as exc:
            raise HttpError(400, f"bad input for {handler.service_name}.{handler.name}: {exc}") from None
        except Exception as exc:  # a custom serde's own error
            raise HttpError(400, f"bad input for {handler.service_name}.{handler.name}: {exc}") from None

    async def _invoke(self, scope: Scope, receive: Receive, send: Send, method: str, parts: list[str], is_send: bool) -> None:
        if method not in ("POST", "GET") or (is_send and method != "POST"):
            allowed = "POST" if is_send else "GET, POST"
            raise HttpError(405, f"method not allowed: {method}; use {allowed}", [(b"allow", allowed.encode())])
        target, handler = self._resolve(parts)
        body = await read_body(scope, receive, self.body_limit)
        delay_ms = self._delay(scope, is_send)
        idempotency_key = _idempotency_key(scope)
        if idempotency_key is not None and handler.kind == HandlerKind.WORKFLOW:
            raise HttpError(
                400,
                "cannot use the idempotency key with workflow handlers. The handler invocation will already be "
                "idempotent by the workflow key itself.",
            )
        self._check_content_type(handler, scope)
        decoded = self._validate_input(handler, body)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _HOP_HEADERS]
        record, input_entry = self.runtime.new_invocation(target, handler, body, headers, idempotency_key, delay_ms)
        if is_send:
            existing, created = await self.runtime.send(record, input_entry, decoded)
            reply: dict[str, typing.Any] = {
                "invocationId": existing.id,
                "status": "Accepted" if created else "PreviouslyAccepted",
            }
            if existing.execute_at_ms:
                reply["executionTime"] = rfc3339(existing.execute_at_ms)
            await respond_json(send, 202, reply, [(b"x-restate-id", existing.id.encode())])
            return
        invocation_id, result = await self.runtime.call(record, input_entry, decoded)
        await self._send_result(send, invocation_id, result, handler)

    def _delay(self, scope: Scope, is_send: bool) -> int:
        query = scope.get("query_string", b"")
        if not query:
            return 0
        value = None
        for pair in query.split(b"&"):
            name, _, raw = pair.partition(b"=")
            if name.lower() == b"delay":
                value = unquote_plus(raw.decode("latin-1"))
        if value is None:
            return 0
        if not is_send:
            raise HttpError(400, "cannot use the delay query parameter with calls. The delay is supported only with sends")
        try:
            return parse_duration_ms(value)
        except BadDuration as exc:
            raise HttpError(400, f"bad delay query parameter: {exc}") from None

    async def _send_result(self, send: Send, invocation_id: str, result: bytes | Failure, handler: typing.Any = None) -> None:
        """The result as Restate answers it: a value with the handler's output content type, a failure as JSON."""
        id_header = (b"x-restate-id", invocation_id.encode())
        if isinstance(result, Failure):
            body = {"code": result.code, "message": result.message, "source": "invocation"}
            if result.metadata:
                body["metadata"] = result.metadata
            await respond_json(
                send,
                http_status_of(result.code),
                body,
                [id_header, (b"x-restate-error-source", b"invocation")],
            )
            return
        content_type = getattr(handler, "content_type", None) or "application/json"
        await respond(send, 200, result, content_type.encode("latin-1"), headers=[id_header])

    # ------------------------------------------------------------ attach and output

    def _workflow_id(self, name: str, key: str) -> str:
        workflow = self.runtime.registry.service(name)
        for handler in workflow.handlers.values() if workflow is not None else ():
            if handler.kind == HandlerKind.WORKFLOW:
                self._require_public(handler)
        return ids.workflow_run_id(name, key)

    def _idempotent_id(self, service_name: str, key: str | None, handler_name: str, idempotency_key: str) -> str:
        """The id an idempotent call to this target got (derived, as Restate's, from the target and the key)."""
        if not idempotency_key:
            raise HttpError(400, "bad idempotency key: it is empty")
        target, _handler = self._resolve([service_name, *([key] if key is not None else []), handler_name])
        return ids.idempotent_invocation_id(target, idempotency_key)

    def _target_body_id(self, body: bytes) -> str:
        """The invocation a POST /restate/attach|output|lookup body names."""
        try:
            spec = serde.loads(body)
        except serde.SerdeError as exc:
            raise HttpError(400, f"cannot read body: invalid request body: {exc}") from None
        if not isinstance(spec, dict):
            raise HttpError(400, "cannot read body: invalid request body: expected a JSON object with a field `target`")

        def field(name: str, required: bool = True) -> typing.Any:
            value = spec.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str):
                raise HttpError(
                    400,
                    f"cannot read body: invalid request body: missing field `{name}`"
                    if value is None
                    else f"cannot read body: invalid request body: `{name}` must be a string",
                )
            return value

        target = field("target")
        if target == "invocation":
            return field("invocationId")
        if target == "idempotentInvocation":
            return self._idempotent_id(field("service"), field("key", required=False), field("handler"), field("idempotencyKey"))
        if target == "workflow":
            return self._workflow_id(field("workflowName"), field("workflowKey"))
        raise HttpError(
            400,
            f"cannot read body: invalid request body: unknown target {target!r}, "
            "expected one of `invocation`, `idempotentInvocation`, `workflow`",
        )

    async def _result(self, send: Send, invocation_id: str, wait: bool) -> None:
        if not ids.is_invocation_id(invocation_id):
            raise HttpError(400, f"bad invocation id '{invocation_id}'")
        record = await self.runtime.get_record(invocation_id)
        handler = None if record is None else self.runtime.registry.handler_for(record.target)
        if handler is not None:
            self._require_public(handler)
        if wait:
            result = await self.runtime.attach(invocation_id)
        else:
            if record is not None and not record.is_completed:
                raise HttpError(NOT_READY_STATUS, "the invocation exists but has not completed yet")
            result = None if record is None else typing.cast(bytes | Failure, record.result)
        if result is None:
            raise HttpError(404, "invocation not found")
        await self._send_result(send, invocation_id, result, handler)

    # ------------------------------------------------------------ awakeables

    async def _complete_awakeable(self, scope: Scope, receive: Receive, send: Send, awakeable_id: str, resolve: bool) -> None:
        body = await read_body(scope, receive, self.body_limit)
        try:
            ids.parse_awakeable_id(awakeable_id)
        except ids.InvalidId as exc:
            raise HttpError(400, f"bad awakeable id '{awakeable_id}': {exc}") from None
        if resolve:
            _check_awakeable_payload(body)
            result: bytes | Failure = body
        else:
            result = Failure(ErrorCode.INTERNAL, body.decode("utf-8", errors="replace"))
        outcome = await self.runtime.complete_awakeable(awakeable_id, result)
        if outcome == CompleteSignalOutcome.NOT_FOUND:
            raise HttpError(404, f"awakeable {awakeable_id} not found: its invocation does not exist")
        if outcome == CompleteSignalOutcome.ALREADY_COMPLETED:
            raise HttpError(409, f"awakeable {awakeable_id} was already completed")
        if outcome == CompleteSignalOutcome.INVOCATION_COMPLETED:
            raise HttpError(409, f"awakeable {awakeable_id} belongs to an invocation that has already completed")
        await respond(send, 202)


def _check_awakeable_payload(body: bytes) -> None:
    """A payload is opaque bytes (an awakeable may read it with a BytesSerde), but JSON-like text no handler
    could read as JSON (NaN, 1e400, an integer over 4300 digits) is refused here, before it reaches one."""
    try:
        serde.loads(body)
    except serde.UnsupportedJson as exc:
        raise HttpError(400, f"bad awakeable payload: {exc}") from None
    except serde.SerdeError:
        pass


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"method not allowed: {method}; use {allowed}", [(b"allow", allowed.encode())])


def _idempotency_key(scope: Scope) -> str | None:
    raw = header(scope, b"idempotency-key")
    if raw is None:
        return None
    try:
        key = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "bad header idempotency-key: not valid UTF-8") from None
    if not key.strip():
        raise HttpError(400, "bad header idempotency-key: it is empty")
    return key
