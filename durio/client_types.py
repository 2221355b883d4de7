"""The official SDK's `restate.client_types`: the interface of the ingress client (`durio.create_client`)."""

from __future__ import annotations

import abc
import typing
from datetime import timedelta

from durio.context import HandlerType

I = typing.TypeVar("I")  # noqa: E741 (the official SDK's type variable names)
O = typing.TypeVar("O")  # noqa: E741


class RestateClientSendHandle:
    """What a send through the ingress answered: the new invocation's id and the HTTP status."""

    def __init__(self, invocation_id: str, status_code: int) -> None:
        self.invocation_id = invocation_id
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"RestateClientSendHandle({self.invocation_id!r}, {self.status_code})"


class HttpError(Exception):
    """The ingress answered with an error status (4xx/5xx); `body` is its text."""

    def __init__(self, status_code: int, message: str, body: str | None = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.body = body


class RestateScopedClient(abc.ABC):
    """Calls within one of Restate's flow-control scopes (Restate server 1.7 preview; durio's ingress has no scopes)."""

    @abc.abstractmethod
    async def service_call(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O: ...

    @abc.abstractmethod
    async def service_send(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle: ...

    @abc.abstractmethod
    async def object_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O: ...

    @abc.abstractmethod
    async def object_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle: ...

    @abc.abstractmethod
    async def workflow_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O: ...

    @abc.abstractmethod
    async def workflow_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: str | None = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle: ...


class RestateClient(abc.ABC):
    """Calls and sends to handlers through a Restate (or durio) ingress."""

    @abc.abstractmethod
    def scope(self, scope: str) -> RestateScopedClient: ...

    @abc.abstractmethod
    async def service_call(
        self, tpe: HandlerType[I, O], arg: I, idempotency_key: str | None = None, headers: typing.Dict[str, str] | None = None
    ) -> O: ...

    @abc.abstractmethod
    async def service_send(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle: ...

    @abc.abstractmethod
    async def object_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O: ...

    @abc.abstractmethod
    async def object_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle: ...

    @abc.abstractmethod
    async def workflow_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> O: ...

    @abc.abstractmethod
    async def workflow_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        idempotency_key: str | None = None,
        headers: typing.Dict[str, str] | None = None,
    ) -> RestateClientSendHandle: ...

    @abc.abstractmethod
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
    ) -> bytes: ...

    @abc.abstractmethod
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
    ) -> RestateClientSendHandle: ...


__all__ = ["RestateClient", "RestateScopedClient", "RestateClientSendHandle", "HttpError"]
