"""Durable futures: what `ctx.run`, `ctx.sleep`, calls, awakeables and promises return.

A future names a handle in the invocation's journal. Awaiting it waits (through
the invocation's actor) until the journal holds that handle's result, then
decodes it; a stored failure raises `TerminalError`.
"""

from __future__ import annotations

import typing

from durio.journal.entries import Failure, Result
from durio.sdk.errors import TerminalError

if typing.TYPE_CHECKING:
    from durio.sdk.context import Context

T = typing.TypeVar("T")

Decoder = typing.Callable[[Result], typing.Any]


def raise_failure(result: Result) -> Result:
    if isinstance(result, Failure):
        raise TerminalError(result.message, result.code, result.metadata)
    return result


class RestateDurableFuture(typing.Generic[T]):
    """A result the journal will hold; await it for the value."""

    __slots__ = ("_context", "_handle", "_decode")

    def __init__(self, context: "Context", handle: int | None, decode: Decoder) -> None:
        self._context = context
        self._handle = handle  # None: already known when created (an eager state read)
        self._decode = decode

    def is_completed(self) -> bool:
        """Whether the handler has already observed this result (never blocks)."""
        return self._handle is None or self._context._host.machine.is_completed(self._handle)

    async def _get(self) -> T:
        if self._handle is None:
            return self._decode(None)
        if not self._context._host.machine.is_completed(self._handle):
            await self._context._host.wait((self._handle,), need_all=True)
        return self._decode(self._context._host.machine.result(self._handle))

    def __await__(self) -> typing.Generator[typing.Any, None, T]:
        return self._get().__await__()


class RestateDurableSleepFuture(RestateDurableFuture[None]):
    """A durable timer."""

    __slots__ = ()


async def _callee_id(context: "Context", known: str, handle: int) -> str:
    """In-process the id is known when the call is recorded; a remote endpoint learns it from a notification."""
    if known:
        return known
    host = context._host
    if not host.machine.is_completed(handle):
        await host.wait((handle,), need_all=True)
    return typing.cast(str, raise_failure(host.machine.result(handle)))


class RestateDurableCallFuture(RestateDurableFuture[T]):
    """The result of a call to another handler, and the callee's invocation id."""

    __slots__ = ("_invocation_id", "_invocation_id_handle")

    def __init__(self, context: "Context", handle: int, decode: Decoder, invocation_id: str, invocation_id_handle: int) -> None:
        super().__init__(context, handle, decode)
        self._invocation_id = invocation_id
        self._invocation_id_handle = invocation_id_handle

    async def invocation_id(self) -> str:
        self._invocation_id = await _callee_id(self._context, self._invocation_id, self._invocation_id_handle)
        return self._invocation_id

    async def cancel_invocation(self) -> None:
        self._context.cancel_invocation(await self.invocation_id())


class SendHandle:
    """A one-way message: only the callee's invocation id comes back."""

    __slots__ = ("_context", "_invocation_id", "_invocation_id_handle")

    def __init__(self, context: "Context", invocation_id: str, invocation_id_handle: int) -> None:
        self._context = context
        self._invocation_id = invocation_id
        self._invocation_id_handle = invocation_id_handle

    async def invocation_id(self) -> str:
        self._invocation_id = await _callee_id(self._context, self._invocation_id, self._invocation_id_handle)
        return self._invocation_id

    async def cancel_invocation(self) -> None:
        self._context.cancel_invocation(await self.invocation_id())


class DurablePromise(typing.Generic[T]):
    """A workflow's named promise: awaited by one handler, completed by another, once."""

    def __init__(self, context: "Context", name: str, serde: typing.Any) -> None:
        # A workflow's context: only workflow contexts make promises, and they have the _promise_* verbs.
        self._context: typing.Any = context
        self.name = name
        self.serde = serde

    def value(self) -> RestateDurableFuture[T]:
        return self._context._promise_value(self.name, self.serde)

    def resolve(self, value: T) -> typing.Awaitable[None]:
        return self._context._promise_complete(self.name, self.serde.serialize(value))

    def reject(self, message: str, code: int = 500) -> typing.Awaitable[None]:
        return self._context._promise_complete(self.name, Failure(code, message))

    def peek(self) -> typing.Awaitable[T | None]:
        return self._context._promise_peek(self.name, self.serde)

    def __await__(self) -> typing.Generator[typing.Any, None, T]:
        return self.value().__await__()
