"""The official SDK's ingress client (`create_client`, `RestateClient`): call handlers over HTTP.

It speaks the ingress protocol Restate and durio share (`POST /{service}[/{key}]/{handler}[/send]`,
`Idempotency-Key`, `?delay=`), so the same client works against both. Built on httpx's AsyncClient,
which runs under Trio and asyncio alike.
"""

from __future__ import annotations

import contextlib
import json
import typing
from datetime import timedelta

from durio.client_types import HttpError, RestateClient, RestateClientSendHandle, RestateScopedClient
from durio.connection import ConnectError
from durio.context import HandlerType
from durio.entry_codec import JournalValueCodec
from durio.sdk.definitions import handler_of
from durio.sdk.serde import BytesSerde, Serde

I = typing.TypeVar("I")  # noqa: E741 (the official SDK's type variable names)
O = typing.TypeVar("O")  # noqa: E741


class Client(RestateClient):
    """A RestateClient over one httpx.AsyncClient whose base URL is the ingress."""

    def __init__(
        self, client: typing.Any, headers: dict[str, str] | None = None, journal_codec: JournalValueCodec | None = None
    ) -> None:
        self.client = client
        self.headers = headers or {}
        self.journal_codec = journal_codec

    def scope(self, scope: str) -> RestateScopedClient:
        return ScopedClient(self, scope)

    async def _typed(
        self,
        tpe: typing.Any,
        arg: typing.Any,
        key: str | None,
        send: bool,
        send_delay: timedelta | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> typing.Any:
        handler = handler_of(tpe)
        headers = dict(headers or {})
        if handler.takes_input and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = handler.accept
        body = handler.input_serde.serialize(arg) if handler.takes_input else b""
        return await self._raw(
            handler.service_name,
            handler.name,
            body,
            handler.output_serde,
            key,
            send,
            send_delay,
            idempotency_key,
            headers,
            scope,
            limit_key,
        )

    async def _raw(
        self,
        service: str,
        handler: str,
        body: bytes,
        output_serde: Serde[typing.Any],
        key: str | None,
        send: bool,
        send_delay: timedelta | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
        scope: str | None,
        limit_key: str | None,
    ) -> typing.Any:
        if limit_key is not None and scope is None:
            raise ValueError("limit_key needs a scope")
        if self.journal_codec is not None:
            body = self.journal_codec.encode(body)
        path = "/".join(part for part in (service, key, handler) if part is not None)
        if scope is not None:
            path = f"restate/scope/{scope}/{'send' if send else 'call'}/{path}"
        elif send:
            path += "/send"
        params = {"delay": f"{int(send_delay.total_seconds() * 1000)}ms"} if send and send_delay is not None else None
        request_headers = {**self.headers, **(headers or {})}
        if idempotency_key is not None:
            request_headers["Idempotency-Key"] = idempotency_key
        if limit_key is not None:
            request_headers["x-restate-limit-key"] = limit_key
        response = await self.client.post("/" + path, content=body, headers=request_headers, params=params)
        if response.status_code >= 400:
            raise HttpError(response.status_code, response.reason_phrase, response.text)
        if send:
            return RestateClientSendHandle(json.loads(response.content).get("invocationId", ""), response.status_code)
        content = response.content
        if self.journal_codec is not None:
            content = await self.journal_codec.decode(content)
        return output_serde.deserialize(content)

    async def service_call(
        self, tpe: HandlerType[I, O], arg: I, idempotency_key: str | None = None, headers: typing.Dict[str, str] | None = None
    ) -> O:
        return typing.cast(O, await self._typed(tpe, arg, None, False, None, idempotency_key, headers))

    async def service_send(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle:
        return typing.cast(RestateClientSendHandle, await self._typed(tpe, arg, None, True, send_delay, idempotency_key, headers))

    async def object_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O:
        return typing.cast(O, await self._typed(tpe, arg, key, False, None, idempotency_key, headers))

    async def object_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle:
        return typing.cast(RestateClientSendHandle, await self._typed(tpe, arg, key, True, send_delay, idempotency_key, headers))

    async def workflow_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O:
        return await self.object_call(tpe, key, arg, idempotency_key, headers)

    async def workflow_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle:
        return await self.object_send(tpe, key, arg, send_delay, idempotency_key, headers)

    async def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> bytes:
        return typing.cast(
            bytes,
            await self._raw(
                service, handler, bytes(arg), BytesSerde(), key, False, None, idempotency_key, headers, scope, limit_key
            ),
        )

    async def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> RestateClientSendHandle:
        return typing.cast(
            RestateClientSendHandle,
            await self._raw(
                service, handler, bytes(arg), BytesSerde(), key, True, send_delay, idempotency_key, headers, scope, limit_key
            ),
        )


class ScopedClient(RestateScopedClient):
    """`client.scope(name)`: the same calls, routed to Restate's scoped ingress paths."""

    def __init__(self, client: Client, scope_key: str) -> None:
        self.client = client
        self.scope_key = scope_key

    async def service_call(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O:
        return typing.cast(
            O, await self.client._typed(tpe, arg, None, False, None, idempotency_key, headers, self.scope_key, limit_key)
        )

    async def service_send(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle:
        return typing.cast(
            RestateClientSendHandle,
            await self.client._typed(tpe, arg, None, True, send_delay, idempotency_key, headers, self.scope_key, limit_key),
        )

    async def object_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O:
        return typing.cast(
            O, await self.client._typed(tpe, arg, key, False, None, idempotency_key, headers, self.scope_key, limit_key)
        )

    async def object_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle:
        return typing.cast(
            RestateClientSendHandle,
            await self.client._typed(tpe, arg, key, True, send_delay, idempotency_key, headers, self.scope_key, limit_key),
        )

    async def workflow_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O:
        return await self.object_call(tpe, key, arg, limit_key, idempotency_key, headers)

    async def workflow_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle:
        return await self.object_send(tpe, key, arg, send_delay, limit_key, idempotency_key, headers)


def resolve_ingress(ingress: str | None, headers: dict[str, str] | None) -> tuple[str, dict[str, str] | None]:
    """The ingress URL: the given one. (The SDK falls back to a Restate Cloud ingress key; durio has none.)"""
    if not ingress:
        raise ConnectError("create_client(): ingress is required, e.g. create_client('http://127.0.0.1:8080')")
    return ingress, headers


@contextlib.asynccontextmanager
async def create_client(
    ingress: str | None = None, headers: dict[str, str] | None = None, journal_value_codec: JournalValueCodec | None = None
) -> typing.AsyncIterator[RestateClient]:
    """An ingress client for the Restate or durio ingress at `ingress`, open while the block runs."""
    try:
        import httpx  # noqa: PLC0415 (an optional dependency: only the client needs it)
    except ImportError as exc:
        raise ImportError("durio's ingress client needs httpx: pip install httpx") from exc
    url, default_headers = resolve_ingress(ingress, headers)
    async with httpx.AsyncClient(base_url=url, timeout=None) as http:
        yield Client(http, default_headers, journal_value_codec)


__all__ = ["create_client", "Client", "ScopedClient", "resolve_ingress"]
