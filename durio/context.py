"""The official SDK's `restate.context`: the context classes, futures, options and their abstract bases.

`AttemptFinishedEvent`, `KeyValueStore` and `ScopedContext` are the SDK's abstract interfaces. durio's
concrete classes are registered as their virtual subclasses, so `isinstance` answers as it does there.
"""

from __future__ import annotations

import abc
import typing
from datetime import timedelta

from durio.sdk.context import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    Request,
    WorkflowContext,
    WorkflowSharedContext,
)
from durio.sdk.futures import (
    DurablePromise,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    SendHandle,
)
from durio.sdk.options import RunOptions
from durio.sdk.serde import DefaultSerde, Serde

T = typing.TypeVar("T")
I = typing.TypeVar("I")  # noqa: E741 (the official SDK's type variable names)
O = typing.TypeVar("O")  # noqa: E741
P = typing.ParamSpec("P")

HandlerType = typing.Union[
    typing.Callable[[typing.Any, I], typing.Awaitable[O]], typing.Callable[[typing.Any], typing.Awaitable[O]]
]
RunAction = typing.Union[typing.Callable[..., typing.Coroutine[typing.Any, typing.Any, T]], typing.Callable[..., T]]


class AttemptFinishedEvent(abc.ABC):
    """Set when the current attempt ends (`ctx.request().attempt_finished_event`)."""

    @abc.abstractmethod
    def is_set(self) -> bool: ...

    @abc.abstractmethod
    async def wait(self) -> None: ...

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        if cls is AttemptFinishedEvent:
            return all(callable(getattr(other, name, None)) for name in ("is_set", "wait"))
        return NotImplemented


class KeyValueStore(abc.ABC):
    """A virtual object's or workflow's state, as an exclusive handler sees it."""

    @abc.abstractmethod
    def get(
        self,
        name: str,
        serde: Serde[T] = DefaultSerde(),
        type_hint: typing.Optional[typing.Type[T]] = None,
        entry_name: typing.Optional[str] = None,
    ) -> typing.Awaitable[typing.Optional[T]]: ...

    @abc.abstractmethod
    def state_keys(self, entry_name: typing.Optional[str] = None) -> typing.Awaitable[typing.List[str]]: ...

    @abc.abstractmethod
    def set(self, name: str, value: T, serde: Serde[T] = DefaultSerde(), entry_name: typing.Optional[str] = None) -> None: ...

    @abc.abstractmethod
    def clear(self, name: str, entry_name: typing.Optional[str] = None) -> None: ...

    @abc.abstractmethod
    def clear_all(self, entry_name: typing.Optional[str] = None) -> None: ...


KeyValueStore.register(ObjectContext)


class ScopedContext(abc.ABC):
    """Calls within one of Restate's flow-control scopes (a server preview durio does not implement:
    `ctx.scope()` raises TerminalError there). The interface is here so that code naming it imports."""

    @abc.abstractmethod
    def service_call(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[O]: ...

    @abc.abstractmethod
    def service_send(
        self,
        tpe: HandlerType[I, O],
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def object_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[O]: ...

    @abc.abstractmethod
    def object_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def workflow_call(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> RestateDurableCallFuture[O]: ...

    @abc.abstractmethod
    def workflow_send(
        self,
        tpe: HandlerType[I, O],
        key: str,
        arg: I,
        send_delay: typing.Optional[timedelta] = None,
        limit_key: typing.Optional[str] = None,
        idempotency_key: typing.Optional[str] = None,
        headers: typing.Optional[typing.Dict[str, str]] = None,
    ) -> SendHandle: ...


__all__ = [
    "Context",
    "ObjectContext",
    "ObjectSharedContext",
    "WorkflowContext",
    "WorkflowSharedContext",
    "Request",
    "RunOptions",
    "DurablePromise",
    "RestateDurableFuture",
    "RestateDurableCallFuture",
    "RestateDurableSleepFuture",
    "SendHandle",
    "ScopedContext",
    "AttemptFinishedEvent",
    "KeyValueStore",
    "HandlerType",
    "RunAction",
]
