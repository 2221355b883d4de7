"""`durio.app(services)`: an ASGI app that serves durio services to a Restate server.

Routes (matched on the end of the path, so the app can be mounted anywhere):
  GET  .../discover                 the endpoint manifest (v1 to v4)
  GET  .../health                   200
  POST .../invoke/{service}/{handler}  one attempt (V5 or V6): request/response over HTTP/1.1, a
                                       bidirectional stream over HTTP/2 (durio.protocol.endpoint.request_stream)

With `identity_keys`, every request but health must be signed by a Restate server holding one of the
keys (durio.protocol.identity), or it is answered 401 before anything else is looked at: as in the
official SDKs, health stays open (load balancers probe it) and discovery does not (the manifest names
every handler). Without keys the endpoint runs whatever any caller sends, state and journal included,
so it says so in a warning when it starts.

The app is AnyIO code: it runs on whatever loop the ASGI server runs, so serve it with hypercorn's
default (asyncio) worker as the official SDK's docs do (`hypercorn module:app --bind 0.0.0.0:9080`),
with `--worker-class uvloop` or `trio`, or with uvicorn; or run `examples/tour/app.py`, which serves it
on port 9080. The handlers run on that loop too: under asyncio they may use asyncio libraries.
"""

from __future__ import annotations

import json
import logging
import time
import typing

import anyio

from durio.asgi import HttpError, Receive, Scope, Send, header, respond, serve_lifespan
from durio.protocol import messages as m
from durio.protocol.endpoint.attempt import EndpointAttempt
from durio.protocol.framing import ProtocolError, encode
from durio.protocol.identity import IdentityError, IdentityVerifier
from durio.protocol.endpoint.request_stream import RequestStream
from durio.protocol.value_codec import decode_journal
from durio.protocol.value_codec import resolve as resolve_codec
from durio.protocol.manifest import (
    INVOCATION_CONTENT_TYPE,
    MANIFEST_CONTENT_TYPE,
    build_manifest,
    invocation_version,
    negotiate_manifest_version,
)
from durio.sdk.definitions import ServiceDefinition
from durio.sdk.errors import ErrorCode

log = logging.getLogger("durio.endpoint")

SERVER_HEADER = (b"x-restate-server", b"durio/0.1.0")
BODY_LIMIT = 64 * 1024 * 1024
# How long an ended attempt waits for the server to close its side of the request before ending the response.
REQUEST_DRAIN_S = 5.0


UNSIGNED_WARNING = (
    "durio.app has no identity_keys: it runs any invocation from anyone who can reach it, with whatever state "
    "and journal the request carries. Give it the Restate server's public key: "
    "durio.app(services, identity_keys=['publickeyv1_...'])"
)


class EndpointApp:
    def __init__(
        self,
        services: list[ServiceDefinition],
        identity_keys: typing.Iterable[str] | None = None,
        journal_value_codec: typing.Any = None,
        protocol: typing.Literal["bidi", "request_response"] | None = None,
    ) -> None:
        self.services: dict[str, ServiceDefinition] = {}
        for service in services:
            if service.name in self.services:
                raise ValueError(f"two services are named {service.name}")
            self.services[service.name] = service
        # The protocol mode the manifest announces; None: the one the discovery request came over.
        self.protocol = protocol
        self.verifier = IdentityVerifier(identity_keys if identity_keys is not None else ())
        self._warned_unsigned = False
        # A JournalValueCodec, or an async provider of one, built at the first invocation and kept.
        self.journal_value_codec = journal_value_codec
        self._codec: typing.Any = None
        self._codec_ready = journal_value_codec is None

    def _warn_if_unsigned(self) -> None:
        if not self.verifier.enabled and not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning(UNSIGNED_WARNING)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # At the lifespan's startup, or at the first request when the server sends no lifespan events.
        self._warn_if_unsigned()
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        segments = scope["path"].rstrip("/").split("/")
        # The official SDK's order: .../invoke/{s}/{h} first, so a handler may be named health or discover.
        invoke = len(segments) >= 4 and segments[-3] == "invoke"
        if not invoke and segments[-1] == "health":
            await respond(send, 200, b'{"status":"ok"}', headers=[SERVER_HEADER])
            return
        try:
            self.verifier.verify(scope["headers"], scope["path"], time.time())
        except IdentityError as exc:
            # The body is not read: nothing of an unauthenticated request is looked at.
            log.warning("refused a request to %r from %s: %s", scope["path"], _client(scope), exc)
            await respond(send, 401, f"unauthorized: {exc}".encode(), b"text/plain", [SERVER_HEADER])
            return
        if invoke:
            await self._invoke(scope, receive, send, segments[-2], segments[-1])
        elif segments[-1] == "discover":
            await self._discover(scope, send)
        else:
            await respond(send, 404, b"not found", b"text/plain", [SERVER_HEADER])

    async def _journal_codec(self) -> typing.Any:
        if not self._codec_ready:
            self._codec = await resolve_codec(self.journal_value_codec)
            self._codec_ready = True
        return self._codec

    async def _discover(self, scope: Scope, send: Send) -> None:
        accept = header(scope, b"accept")
        version = negotiate_manifest_version(accept.decode("latin-1") if accept else None)
        if version is None:
            await respond(send, 415, b"Unsupported discovery version", b"text/plain", [SERVER_HEADER])
            return
        protocol = self.protocol or ("bidi" if scope.get("http_version") == "2" else "request_response")
        mode = "BIDI_STREAM" if protocol == "bidi" else "REQUEST_RESPONSE"
        body = json.dumps(build_manifest(self.services.values(), version, mode)).encode()
        await respond(send, 200, body, MANIFEST_CONTENT_TYPE.format(version).encode(), [SERVER_HEADER])

    async def _invoke(self, scope: Scope, receive: Receive, send: Send, service_name: str, handler_name: str) -> None:
        service = self.services.get(service_name)
        handler = None if service is None else service.handlers.get(handler_name)
        if handler is None:
            await respond(send, 404, f"no handler {service_name}/{handler_name}".encode(), b"text/plain", [SERVER_HEADER])
            return
        content_type = header(scope, b"content-type")
        version = invocation_version(content_type.decode("latin-1") if content_type else None)
        if version is None:
            await respond(
                send,
                415,
                b"unsupported content type: expected application/vnd.restate.invocation.v5 or v6",
                b"text/plain",
                [SERVER_HEADER],
            )
            return
        request = RequestStream(scope, receive, BODY_LIMIT)
        try:
            start, journal = await request.replay()
            codec = await self._journal_codec()
            try:
                await decode_journal(journal, codec)
                for entry in start.state_map if codec is not None else ():
                    entry.value = await codec.decode(bytes(entry.value))
            except Exception as exc:  # a value the codec cannot read (not encoded, another key): retried, and said why
                raise ProtocolError(f"the journal value codec cannot decode a value: {exc!r}", ErrorCode.INTERNAL) from exc
        except ProtocolError as exc:
            await _refuse_attempt(send, version, exc)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", INVOCATION_CONTENT_TYPE.format(version).encode()), SERVER_HEADER],
            }
        )
        out_send, out_receive = anyio.create_memory_object_stream[bytes](float("inf"))

        async def forward_frames() -> None:
            async with out_receive:
                async for frame in out_receive:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})

        request_over = anyio.Event()

        async def take_notifications(attempt: EndpointAttempt) -> None:
            # Over HTTP/2 the request stays open: what the server sends meanwhile reaches the running handler.
            try:
                async for notification in request.notifications():
                    if codec is not None:
                        await decode_journal([notification], codec)
                    attempt.notify(notification)
                attempt.input_closed()
            except ProtocolError as exc:
                attempt.fail(exc.code, str(exc))
            except HttpError:
                attempt.abandon()  # the server went away: nothing this attempt does can reach it
            finally:
                request_over.set()

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(forward_frames)
            async with out_send:
                attempt_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                attempt = EndpointAttempt(handler, start, journal, version, out_send, attempt_headers, codec)
                async with anyio.create_task_group() as inputs:
                    inputs.start_soon(take_notifications, attempt)
                    await attempt.run()
                    # The server closes its side once it has read how the attempt ended. Ending the response
                    # before that would leave its last frames arriving on a stream the HTTP/2 server has
                    # forgotten, which hypercorn (0.18) answers by dropping the whole connection.
                    with anyio.move_on_after(REQUEST_DRAIN_S):
                        await request_over.wait()
                    inputs.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _refuse_attempt(send: Send, version: int, exc: ProtocolError) -> None:
    """A request that is not a well-formed invocation (or whose values the codec cannot read): its one answer is
    an ErrorMessage, which the server retries and reports."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", INVOCATION_CONTENT_TYPE.format(version).encode()), SERVER_HEADER],
        }
    )
    error = m.MESSAGES["ErrorMessage"](code=exc.code, message=str(exc))
    await send({"type": "http.response.body", "body": encode(m.ERROR, error), "more_body": False})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "an unknown client"
