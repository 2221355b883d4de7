"""Durable futures: what `ctx.run`, `ctx.sleep`, calls, awakeables and promises return.

A future names a handle in the invocation's journal. Awaiting it waits (through
the invocation's host) until the journal holds that handle's result, then
decodes it; a stored failure raises `TerminalError`.

Futures hold the host (sdk/host.py), never the context that made them: the
context imports this module, and nothing here imports the context.
"""

from __future__ import annotations

import typing

from durio import ids
from durio.journal import entries as e
from durio.journal.entries import Failure, Result
from durio.sdk.errors import ErrorCode, TerminalError
from durio.sdk.host import InvocationHost
from durio.sdk.serde import Serde, SerdeError

T = typing.TypeVar("T")

Decoder = typing.Callable[[Result], typing.Any]


def raise_failure(result: Result) -> Result:
    if isinstance(result, Failure):
        raise TerminalError(result.message, result.code, result.metadata)
    return result


def decoder(serde: Serde[typing.Any]) -> Decoder:
    """How a future turns the result its journal holds into the handler's value (a failure raises)."""

    def decode(result: Result) -> typing.Any:
        raise_failure(result)
        if result is None:
            return None
        try:
            return serde.deserialize(typing.cast(bytes, result))
        except TerminalError:
            raise
        except Exception as exc:
            # Whatever the deserializer raises (a SerdeError, pydantic's ValidationError, a custom serde's
            # TypeError), a replay decodes the same stored bytes again: retrying cannot help, so this step fails.
            reason = str(exc) if isinstance(exc, SerdeError) else f"{type(exc).__name__}: {exc}"
            raise TerminalError(f"cannot decode a stored result: {reason}", ErrorCode.INTERNAL) from exc

    return decode


def void(result: Result) -> None:
    raise_failure(result)


def cancel_invocation(host: InvocationHost, invocation_id: str) -> None:
    """Record the command that cancels another invocation (ctx.cancel_invocation, and a call's handle)."""
    if not ids.is_invocation_id(invocation_id):
        raise TerminalError(f"{invocation_id!r} is not an invocation id", ErrorCode.BAD_REQUEST)
    host.record_command(e.SendSignal(target_invocation_id=invocation_id, signal_index=e.CANCEL_SIGNAL))


class RestateDurableFuture(typing.Generic[T]):
    """A result the journal will hold; await it for the value."""

    __slots__ = ("_host", "_handle", "_decode")

    def __init__(self, host: InvocationHost, handle: int | None, decode: Decoder) -> None:
        self._host = host
        self._handle = handle  # None: already known when created (an eager state read)
        self._decode = decode

    def is_completed(self) -> bool:
        """Whether the handler has already observed this result (never blocks)."""
        return self._handle is None or self._host.machine.is_completed(self._handle)

    async def _get(self) -> T:
        if self._handle is None:
            return self._decode(None)
        if not self._host.machine.is_completed(self._handle):
            await self._host.wait((self._handle,), need_all=True)
        return self._decode(self._host.machine.result(self._handle))

    def __await__(self) -> typing.Generator[typing.Any, None, T]:
        return self._get().__await__()


class RestateDurableSleepFuture(RestateDurableFuture[None]):
    """A durable timer."""

    __slots__ = ()


async def wait_for(futures: typing.Sequence[RestateDurableFuture[typing.Any]], need_all: bool) -> None:
    """Wait until all (or any) of `futures` are completed; they come from one handler's context."""
    host = None
    for future in futures:
        if not isinstance(future, RestateDurableFuture):
            raise TerminalError(f"{future!r} is not a durable future: only futures made by the context can be combined")
        if host is None:
            host = future._host
        elif future._host is not host:
            raise TerminalError("all futures must come from the same handler context")
    if host is not None:
        await host.wait([typing.cast(int, f._handle) for f in futures], need_all=need_all)


async def _callee_id(host: InvocationHost, known: str, handle: int) -> str:
    """In-process the id is known when the call is recorded; a remote endpoint learns it from a notification."""
    if known:
        return known
    if not host.machine.is_completed(handle):
        await host.wait((handle,), need_all=True)
    return typing.cast(str, raise_failure(host.machine.result(handle)))


class RestateDurableCallFuture(RestateDurableFuture[T]):
    """The result of a call to another handler, and the callee's invocation id."""

    __slots__ = ("_invocation_id", "_invocation_id_handle")

    def __init__(self, host: InvocationHost, handle: int, decode: Decoder, invocation_id: str, invocation_id_handle: int) -> None:
        super().__init__(host, handle, decode)
        self._invocation_id = invocation_id
        self._invocation_id_handle = invocation_id_handle

    async def invocation_id(self) -> str:
        self._invocation_id = await _callee_id(self._host, self._invocation_id, self._invocation_id_handle)
        return self._invocation_id

    async def cancel_invocation(self) -> None:
        cancel_invocation(self._host, await self.invocation_id())


class SendHandle:
    """A one-way message: only the callee's invocation id comes back."""

    __slots__ = ("_host", "_invocation_id", "_invocation_id_handle")

    def __init__(self, host: InvocationHost, invocation_id: str, invocation_id_handle: int) -> None:
        self._host = host
        self._invocation_id = invocation_id
        self._invocation_id_handle = invocation_id_handle

    async def invocation_id(self) -> str:
        self._invocation_id = await _callee_id(self._host, self._invocation_id, self._invocation_id_handle)
        return self._invocation_id

    async def cancel_invocation(self) -> None:
        cancel_invocation(self._host, await self.invocation_id())


class DurablePromise(typing.Generic[T]):
    """A workflow's named promise: awaited by one handler, completed by another, once."""

    def __init__(self, host: InvocationHost, name: str, serde: Serde[T]) -> None:
        # Only workflow contexts make promises (ctx.promise): the host runs a workflow's handler.
        self._host = host
        self.name = name
        self.serde = serde

    def value(self) -> RestateDurableFuture[T]:
        completion_id = self._host.machine.allocate_completion_id()
        entry = typing.cast(e.GetPromise, self._host.record_command(e.GetPromise(key=self.name, completion_id=completion_id)))
        return RestateDurableFuture(self._host, entry.completion_id, decoder(self.serde))

    def resolve(self, value: T) -> typing.Awaitable[None]:
        return self._complete(self.serde.serialize(value))

    def reject(self, message: str, code: int = 500) -> typing.Awaitable[None]:
        return self._complete(Failure(code, message))

    def peek(self) -> typing.Awaitable[T | None]:
        completion_id = self._host.machine.allocate_completion_id()
        entry = typing.cast(e.PeekPromise, self._host.record_command(e.PeekPromise(key=self.name, completion_id=completion_id)))
        return RestateDurableFuture(self._host, entry.completion_id, decoder(self.serde))

    def _complete(self, result: bytes | Failure) -> RestateDurableFuture[None]:
        completion_id = self._host.machine.allocate_completion_id()
        entry = typing.cast(
            e.CompletePromise,
            self._host.record_command(e.CompletePromise(key=self.name, result=result, completion_id=completion_id)),
        )
        return RestateDurableFuture(self._host, entry.completion_id, void)

    def __await__(self) -> typing.Generator[typing.Any, None, T]:
        return self.value().__await__()
