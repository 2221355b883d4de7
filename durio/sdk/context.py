"""The context handed to handlers: every method records a journal command.

Class names and method signatures are the official SDK's. One class per
handler kind: a plain service gets `Context`, an exclusive object handler
`ObjectContext`, a shared one `ObjectSharedContext`, a workflow's run
`WorkflowContext` and its other handlers `WorkflowSharedContext`.
"""

from __future__ import annotations

import functools
import inspect
import math
import random as _random
from random import Random as RandomGenerator  # the name `_random` is also a method below
import typing
import uuid as _uuid
from dataclasses import dataclass
from datetime import timedelta

from durio import ids
from durio.kinds import HandlerKind, ServiceKind
from durio.journal import entries as e
from durio.sdk.definitions import Handler, handler_of
from durio.sdk.errors import ErrorCode, TerminalError
from durio.sdk.futures import (
    DurablePromise,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    SendHandle,
    cancel_invocation,
    decoder,
    raise_failure,
    void,
)
from durio.sdk.host import InvocationHost
from durio.sdk.options import RunOptions
from durio.sdk.serde import BytesSerde, DefaultSerde, Serde
from durio.limits import key_problem, name_problem

T = typing.TypeVar("T")
I = typing.TypeVar("I")  # noqa: E741 (the official SDK's type variable names)
O = typing.TypeVar("O")  # noqa: E741


@dataclass
class Request:
    """The request that started this invocation."""

    id: str
    headers: dict[str, str]
    attempt_headers: dict[str, str]
    body: bytes
    attempt_finished_event: typing.Any
    scope: str | None = None
    limit_key: str | None = None
    idempotency_key: str | None = None


def _unwrap_optional(hint: typing.Any) -> typing.Any:
    args = typing.get_args(hint)
    if len(args) == 2 and type(None) in args:
        return args[0] if args[1] is type(None) else args[1]
    return hint


def _serde_with_hint(serde: Serde[T], hint: typing.Any) -> Serde[T]:
    if isinstance(serde, DefaultSerde) and serde.type_hint is None and hint not in (None, inspect.Signature.empty):
        return serde.with_maybe_type(_unwrap_optional(hint))
    return serde


_RETURN_HINTS: dict[typing.Any, typing.Any] = {}


def _return_hint(fn: typing.Any) -> typing.Any:
    """A function's return annotation, remembered per code object (lambdas are made anew each call)."""
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    cache_key = getattr(target, "__code__", target)
    try:
        return _RETURN_HINTS[cache_key]
    except (KeyError, TypeError):
        pass
    try:
        hint = inspect.signature(fn, eval_str=True).return_annotation
    except (TypeError, ValueError, NameError):
        hint = None
    try:
        if len(_RETURN_HINTS) > 10_000:
            _RETURN_HINTS.clear()
        _RETURN_HINTS[cache_key] = hint
    except TypeError:
        pass
    return hint


def _refuse_scope(scope: str | None, limit_key: str | None) -> None:
    # Restate's flow control (server 1.7 preview, protocol v7) routes calls by scope and limits them per
    # limit key. durio has neither; dropping them would run the call unscoped and unlimited, unnoticed.
    if scope is not None or limit_key is not None:
        raise TerminalError("durio does not implement Restate's flow-control scopes (scope=, limit_key=, ctx.scope())", 501)


class Context:
    """The context of a plain service handler (and the base of all others)."""

    def __init__(self, host: InvocationHost) -> None:
        self._host = host
        self._random_generator: _random.Random | None = None  # seeded on first use: most handlers never ask

    @property
    def _random(self) -> _random.Random:
        if self._random_generator is None:
            self._random_generator = _random.Random(ids.random_seed(self._host.record.id))
        return self._random_generator

    # ------------------------------------------------------------ the request

    def request(self) -> Request:
        record = self._host.record
        headers = {k: v for k, v in self._host.machine.input.headers}
        # A remote attempt arrives in an HTTP request of its own; an embedded one has none, so its
        # headers are the invocation's own.
        attempt_headers = self._host.attempt_headers
        return Request(
            id=record.id,
            headers=headers,
            attempt_headers=dict(headers) if attempt_headers is None else dict(attempt_headers),
            body=self._host.machine.input.value,
            attempt_finished_event=self._host.attempt_finished(),
            # None in a remote attempt: protocols V5/V6 do not carry it (the official SDK's is None there too).
            idempotency_key=record.idempotency_key,
        )

    def scope(self, scope: str) -> typing.NoReturn:
        """Restate's flow-control preview (scopes and limit keys), which durio does not implement."""
        _refuse_scope(scope, None)
        raise AssertionError("unreachable")

    def key(self) -> str:
        key = self._host.record.target.key
        if key is None:
            raise TerminalError("ctx.key() is only available in virtual object and workflow handlers")
        return key

    # ------------------------------------------------------------ deterministic values

    def random(self) -> "RandomGenerator":
        """A random generator seeded by the invocation id: the same values on every replay."""
        return self._random

    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(int=self._random.getrandbits(128), version=4)

    def time(self) -> RestateDurableFuture[float]:
        """The current time in seconds, journaled so a replay sees the same value."""

        async def now() -> float:  # async: the clock is read on the event loop, not in a worker thread
            return self._host.now_ms() / 1000

        return self.run_typed("timestamp", now, RunOptions(type_hint=float))

    # ------------------------------------------------------------ run steps

    def run_typed(
        self,
        name: str,
        action: typing.Callable[..., typing.Any],
        options: RunOptions[T] = RunOptions(),
        /,
        *args: typing.Any,
        **kwargs: typing.Any,
    ) -> RestateDurableFuture[T]:
        """Run `action(*args, **kwargs)` once; its result (or terminal failure) is journaled.

        A sync action runs in a worker thread, so it never blocks the event loop.
        """
        serde = _serde_with_hint(options.serde, options.type_hint or _return_hint(action))
        completion_id = self._host.machine.allocate_completion_id()
        entry = typing.cast(e.Run, self._host.record_command(e.Run(name=name, completion_id=completion_id)))
        if not self._host.machine.has_notification(entry.completion_id):
            bound = functools.partial(action, *args, **kwargs) if args or kwargs else action
            self._host.start_run(entry, bound, serde, options)
        return RestateDurableFuture(self._host, entry.completion_id, decoder(serde))

    def run(
        self,
        name: str,
        action: typing.Callable[..., typing.Any],
        serde: Serde[T] = DefaultSerde(),
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: typing.Optional[typing.Type[T]] = None,
        args: typing.Optional[typing.Tuple[typing.Any, ...]] = None,
    ) -> RestateDurableFuture[T]:
        """The older form of `run_typed`."""
        options = RunOptions(serde=serde, type_hint=type_hint, max_attempts=max_attempts, max_duration=max_retry_duration)
        return self.run_typed(name, action, options, *(args or ()))

    # ------------------------------------------------------------ timers

    def sleep(self, delta: timedelta, name: str | None = None) -> RestateDurableSleepFuture:
        wake_up_ms = self._host.due_ms(max(0, math.ceil(delta.total_seconds() * 1000)))
        completion_id = self._host.machine.allocate_completion_id()
        entry = typing.cast(
            e.Sleep,
            self._host.record_command(e.Sleep(wake_up_ms=wake_up_ms, completion_id=completion_id, name=name or "")),
        )
        return RestateDurableSleepFuture(self._host, entry.completion_id, void)

    # ------------------------------------------------------------ calls

    def _callee_id(self, target: e.Target, idempotency_key: str | None, handler_kind: str | None) -> str:
        return ids.callee_invocation_id(target, idempotency_key, handler_kind, self._host.now_ms())

    @staticmethod
    def _check_target(target: e.Target) -> None:
        problem = None if target.key is None else key_problem(target.key)
        if problem is not None:
            raise TerminalError(f"cannot call {target.service} with that key: {problem}", ErrorCode.BAD_REQUEST)

    def _do_call(
        self,
        target: e.Target,
        value: bytes,
        output_serde: Serde[typing.Any],
        handler_kind: str | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> RestateDurableCallFuture[typing.Any]:
        self._check_target(target)
        machine = self._host.machine
        command = e.Call(
            target=target,
            value=value,
            completion_id=machine.allocate_completion_id(),
            invocation_id_completion_id=machine.allocate_completion_id(),
            callee_id=self._callee_id(target, idempotency_key, handler_kind),
            headers=list((headers or {}).items()),
            idempotency_key=idempotency_key,
        )
        entry = typing.cast(e.Call, self._host.record_command(command))
        return RestateDurableCallFuture(
            self._host, entry.completion_id, decoder(output_serde), entry.callee_id, entry.invocation_id_completion_id
        )

    def _do_send(
        self,
        target: e.Target,
        value: bytes,
        handler_kind: str | None,
        send_delay: timedelta | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> SendHandle:
        self._check_target(target)
        machine = self._host.machine
        delay_ms = int(send_delay.total_seconds() * 1000) if send_delay else 0
        command = e.OneWayCall(
            target=target,
            value=value,
            invoke_at_ms=self._host.due_ms(delay_ms) if delay_ms > 0 else 0,
            invocation_id_completion_id=machine.allocate_completion_id(),
            callee_id=self._callee_id(target, idempotency_key, handler_kind),
            headers=list((headers or {}).items()),
            idempotency_key=idempotency_key,
        )
        entry = typing.cast(e.OneWayCall, self._host.record_command(command))
        return SendHandle(self._host, entry.callee_id, entry.invocation_id_completion_id)

    @staticmethod
    def _typed_target(tpe: typing.Any, key: str | None) -> tuple[Handler, e.Target]:
        handler = handler_of(tpe)
        if handler.service_kind != ServiceKind.SERVICE and key is None:
            raise TerminalError(f"calling {handler.service_name}.{handler.name} needs a key")
        return handler, e.Target(handler.service_name, handler.name, key if handler.service_kind != ServiceKind.SERVICE else None)

    def service_call(
        self, tpe: typing.Any, arg: typing.Any, idempotency_key: str | None = None, headers: dict[str, str] | None = None
    ) -> RestateDurableCallFuture[typing.Any]:
        handler, target = self._typed_target(tpe, None)
        return self._do_call(
            target, handler.input_serde.serialize(arg), handler.output_serde, handler.kind, idempotency_key, headers
        )

    def service_send(
        self,
        tpe: typing.Any,
        arg: typing.Any,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        handler, target = self._typed_target(tpe, None)
        return self._do_send(target, handler.input_serde.serialize(arg), handler.kind, send_delay, idempotency_key, headers)

    def object_call(
        self,
        tpe: typing.Any,
        key: str,
        arg: typing.Any,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[typing.Any]:
        handler, target = self._typed_target(tpe, key)
        return self._do_call(
            target, handler.input_serde.serialize(arg), handler.output_serde, handler.kind, idempotency_key, headers
        )

    def object_send(
        self,
        tpe: typing.Any,
        key: str,
        arg: typing.Any,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        handler, target = self._typed_target(tpe, key)
        return self._do_send(target, handler.input_serde.serialize(arg), handler.kind, send_delay, idempotency_key, headers)

    def workflow_call(
        self,
        tpe: typing.Any,
        key: str,
        arg: typing.Any,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[typing.Any]:
        return self.object_call(tpe, key, arg, idempotency_key, headers)

    def workflow_send(
        self,
        tpe: typing.Any,
        key: str,
        arg: typing.Any,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        return self.object_send(tpe, key, arg, send_delay, idempotency_key, headers)

    def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> RestateDurableCallFuture[bytes]:
        _refuse_scope(scope, limit_key)
        kind = self._host.kind_of(e.Target(service, handler, key))
        return self._do_call(e.Target(service, handler, key), bytes(arg), BytesSerde(), kind, idempotency_key, headers)

    def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> SendHandle:
        _refuse_scope(scope, limit_key)
        kind = self._host.kind_of(e.Target(service, handler, key))
        return self._do_send(e.Target(service, handler, key), bytes(arg), kind, send_delay, idempotency_key, headers)

    # ------------------------------------------------------------ awakeables, cancellation, attach

    def awakeable(
        self, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> tuple[str, RestateDurableFuture[T]]:
        """An id to hand to the outside world, and the future its completion resolves."""
        serde = _serde_with_hint(serde, type_hint)
        signal_index = self._host.machine.allocate_signal_index()
        awakeable_id = ids.awakeable_id(self._host.record.id, signal_index)
        return awakeable_id, RestateDurableFuture(self._host, e.signal_handle(signal_index), decoder(serde))

    def resolve_awakeable(self, name: str, value: typing.Any, serde: Serde[typing.Any] = DefaultSerde()) -> None:
        self._check_awakeable_id(name)
        self._host.record_command(
            e.CompleteAwakeable(awakeable_id=name, result=_serde_with_hint(serde, type(value)).serialize(value))
        )

    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        self._check_awakeable_id(name)
        self._host.record_command(e.CompleteAwakeable(awakeable_id=name, result=e.Failure(failure_code, failure_message)))

    def signal(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> RestateDurableFuture[T]:
        """The value another handler sends this invocation under `name` (ctx.resolve_signal), once it arrives."""
        serde = _serde_with_hint(serde, type_hint)
        return RestateDurableFuture(self._host, self._host.machine.named_signal(name), decoder(serde))

    def resolve_signal(self, invocation_id: str, name: str, value: typing.Any, serde: Serde[typing.Any] = DefaultSerde()) -> None:
        self._check_invocation_id(invocation_id)
        self._host.record_command(
            e.SendNamedSignal(
                target_invocation_id=invocation_id, signal_name=name, result=_serde_with_hint(serde, type(value)).serialize(value)
            )
        )

    def reject_signal(self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500) -> None:
        self._check_invocation_id(invocation_id)
        self._host.record_command(
            e.SendNamedSignal(
                target_invocation_id=invocation_id, signal_name=name, result=e.Failure(failure_code, failure_message)
            )
        )

    @staticmethod
    def _check_invocation_id(invocation_id: str) -> None:
        if not ids.is_invocation_id(invocation_id):
            raise TerminalError(f"{invocation_id!r} is not an invocation id", ErrorCode.BAD_REQUEST)

    @staticmethod
    def _check_awakeable_id(name: str) -> None:
        try:
            ids.parse_awakeable_id(name)
        except ids.InvalidId as exc:
            raise TerminalError(str(exc), ErrorCode.BAD_REQUEST) from exc

    def cancel_invocation(self, invocation_id: str) -> None:
        cancel_invocation(self._host, invocation_id)

    def attach_invocation(
        self, invocation_id: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> RestateDurableFuture[T]:
        if not ids.is_invocation_id(invocation_id):
            raise TerminalError(f"{invocation_id!r} is not an invocation id", ErrorCode.BAD_REQUEST)
        serde = _serde_with_hint(serde, type_hint)
        completion_id = self._host.machine.allocate_completion_id()
        entry = typing.cast(
            e.AttachInvocation,
            self._host.record_command(e.AttachInvocation(target_invocation_id=invocation_id, completion_id=completion_id)),
        )
        return RestateDurableFuture(self._host, entry.completion_id, decoder(serde))


class _KeyedContext(Context):
    """What every virtual object and workflow handler can do: read its key's state.

    Private, so that the public classes relate as the official SDK's do: an exclusive handler's
    ObjectContext is not an ObjectSharedContext (`isinstance` tells the two kinds apart)."""

    @property
    def _lazy(self) -> bool:
        """Whether the state view holds only part of the state (a remote attempt with lazy state): what it lacks
        is asked of the server. An embedded host always has it all."""
        return self._host.partial_state

    def get(
        self,
        name: str,
        serde: Serde[T] = DefaultSerde(),
        type_hint: typing.Optional[typing.Type[T]] = None,
        entry_name: str | None = None,
    ) -> RestateDurableFuture[T | None]:
        serde = _serde_with_hint(serde, type_hint)
        if self._lazy and name not in self._host.state:
            completion_id = self._host.machine.allocate_completion_id()
            lazy = typing.cast(
                e.GetLazyState,
                self._host.record_command(e.GetLazyState(key=name, completion_id=completion_id, name=entry_name or "")),
            )
            return RestateDurableFuture(self._host, lazy.completion_id, decoder(serde))
        command = e.GetState(key=name, value=self._host.state.get(name), name=entry_name or "")
        entry = typing.cast(e.GetState, self._host.record_command(command))
        value = entry.value
        decode = decoder(serde)
        return RestateDurableFuture(self._host, None, lambda _: None if value is None else decode(value))

    def state_keys(self, entry_name: str | None = None) -> RestateDurableFuture[list[str]]:
        if self._lazy:
            completion_id = self._host.machine.allocate_completion_id()
            lazy = typing.cast(
                e.GetLazyStateKeys,
                self._host.record_command(e.GetLazyStateKeys(completion_id=completion_id, name=entry_name or "")),
            )
            return RestateDurableFuture(
                self._host, lazy.completion_id, lambda result: list(typing.cast(list, raise_failure(result)) or [])
            )
        entry = typing.cast(
            e.GetStateKeys,
            self._host.record_command(e.GetStateKeys(keys=sorted(self._host.state), name=entry_name or "")),
        )
        keys = list(entry.keys)
        return RestateDurableFuture(self._host, None, lambda _: keys)


class ObjectSharedContext(_KeyedContext):
    """A shared handler of a virtual object: it reads state, never writes it."""

    def _read_only(self, what: str) -> typing.NoReturn:
        handler = self._host.handler
        raise TerminalError(
            f"{what} is not allowed in the shared handler {handler.service_name}.{handler.name}: "
            "shared handlers only read state; write it from an exclusive handler"
        )

    def set(self, name: str, value: typing.Any, serde: Serde[typing.Any] = DefaultSerde(), entry_name: str | None = None) -> None:
        self._read_only(f"ctx.set({name!r})")

    def clear(self, name: str, entry_name: str | None = None) -> None:
        self._read_only(f"ctx.clear({name!r})")

    def clear_all(self, entry_name: str | None = None) -> None:
        self._read_only("ctx.clear_all()")


class ObjectContext(_KeyedContext):
    """An exclusive handler of a virtual object: the only writer of its key's state."""

    def set(self, name: str, value: typing.Any, serde: Serde[typing.Any] = DefaultSerde(), entry_name: str | None = None) -> None:
        buffer = _serde_with_hint(serde, type(value)).serialize(value)
        _, new = self._record_write(e.SetState(key=name, value=buffer, name=entry_name or ""))
        if new:
            self._host.state[name] = buffer

    def clear(self, name: str, entry_name: str | None = None) -> None:
        _, new = self._record_write(e.ClearState(key=name, name=entry_name or ""))
        if new:
            self._host.state.pop(name, None)

    def clear_all(self, entry_name: str | None = None) -> None:
        _, new = self._record_write(e.ClearAllState(name=entry_name or ""))
        if new:
            self._host.state.clear()

    def _record_write(self, command: e.Entry) -> tuple[e.Entry, bool]:
        key = getattr(command, "key", None)
        problem = None if key is None else name_problem(key)
        if problem is not None:
            raise TerminalError(f"cannot write the state {typing.cast(str, key)[:40]!r}...: {problem}", ErrorCode.BAD_REQUEST)
        # A replayed write is already in the state view (it was loaded from storage or made live). With lazy
        # state it is applied again: the view then knows the keys this handler wrote, as in the first attempt,
        # so a replayed get() asks the server again exactly when the first one did. (Reapplying a journal's
        # writes to the state they produced gives that state again.)
        replaying = self._host.machine.replaying
        return self._host.record_command(command), not replaying or self._lazy


class _PromiseMethods:
    """Durable promises, shared by both workflow contexts."""

    _host: InvocationHost

    def promise(
        self, name: str, serde: Serde[T] = DefaultSerde(), type_hint: typing.Optional[typing.Type[T]] = None
    ) -> DurablePromise[T]:
        problem = name_problem(name)
        if problem is not None:
            raise TerminalError(f"cannot use the promise {name[:40]!r}...: {problem}", ErrorCode.BAD_REQUEST)
        return DurablePromise(self._host, name, _serde_with_hint(serde, type_hint))


class WorkflowSharedContext(_PromiseMethods, ObjectSharedContext):
    """A workflow's shared handler: reads state, completes and reads promises."""


class WorkflowContext(_PromiseMethods, ObjectContext):
    """A workflow's run: writes state, awaits its promises."""


def context_for(host: InvocationHost) -> Context:
    handler = host.handler
    if handler.service_kind == ServiceKind.SERVICE:
        return Context(host)
    if handler.service_kind == ServiceKind.OBJECT:
        return ObjectContext(host) if handler.kind != HandlerKind.SHARED else ObjectSharedContext(host)
    return WorkflowContext(host) if handler.kind == HandlerKind.WORKFLOW else WorkflowSharedContext(host)


def host_of(context: Context) -> InvocationHost:
    """The host a handler's context records into (durio.sdk.invoke marks its journal as running)."""
    return context._host
