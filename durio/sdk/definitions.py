"""Service definitions: `Service`, `VirtualObject`, `Workflow` and their handlers.

The constructors and decorators take the official SDK's parameters, so a
service file written for `restate` runs on durio with only the import changed.
They are spelled out, in the SDK's order, rather than taken as `**options`: a
misspelt option is then a TypeError, as in the SDK, instead of silently unused.
Parameters that only make sense for the Restate server (inactivity timeouts,
lazy state) are accepted and kept, and show up in discovery.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from datetime import timedelta

from durio.kinds import HandlerKind, ServiceKind
from durio.sdk.options import InvocationRetryPolicy
from durio.sdk.serde import DefaultSerde, Serde, serde_for_hint

# Where a decorated function keeps its Handler, so `ctx.service_call(fn, ...)` can find the target.
_HANDLER_ATTRIBUTE = "__durio_handler__"


@dataclass
class Handler:
    """One handler: its target name, kind, function and serialization."""

    service_name: str
    service_kind: ServiceKind
    name: str
    kind: HandlerKind | None  # None for plain services
    fn: typing.Callable[..., typing.Awaitable[typing.Any]]
    arity: int
    input_serde: Serde[typing.Any]
    output_serde: Serde[typing.Any]
    input_hint: typing.Any = None
    output_hint: typing.Any = None
    accept: str = "application/json"
    content_type: str = "application/json"
    description: str | None = None
    metadata: dict[str, str] | None = None
    invocation_retry_policy: InvocationRetryPolicy | None = None
    options: dict[str, typing.Any] = field(default_factory=dict)

    @property
    def is_exclusive(self) -> bool:
        """Runs under the key's lock: object exclusive handlers and the workflow's run."""
        return self.service_kind == ServiceKind.OBJECT and self.kind != HandlerKind.SHARED

    @property
    def takes_input(self) -> bool:
        return self.arity >= 2

    @property
    def input_required(self) -> bool:
        """Never: an empty body is None for the handler, whatever its parameter's hint, as in the official
        SDK (whose manifest, like durio's, says `required: false`). Refusing it when the hint has no None
        broke handlers written for the SDK that take an optional argument without saying so."""
        return False


def is_ingress_private(service: typing.Any, handler: typing.Any) -> bool:
    """Whether only other services' handlers may invoke `handler` (Restate's `ingress_private`).

    The handler's own option wins over its service's, so a service can be private
    with one public handler or public with one private handler. Duck-typed: it
    answers for a remote deployment's services as for local definitions.
    """
    own = handler.options.get("ingress_private")
    if own is None:
        own = getattr(service, "ingress_private", None)
    return bool(own)


def handler_of(fn: typing.Any) -> Handler:
    """The Handler behind a decorated function, for typed calls between handlers."""
    handler = getattr(fn, _HANDLER_ATTRIBUTE, None)
    if handler is None:
        raise ValueError(f"{fn!r} is not a durio handler: decorate it with @service.handler()")
    return handler


class _Definition:
    """What Service, VirtualObject and Workflow share."""

    kind: ServiceKind

    def __init__(
        self,
        name: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: list[typing.Callable[[], typing.AsyncContextManager[None]]] | None = None,
        enable_lazy_state: bool | None = None,
        state_preload: bool | list[str] | None = None,
    ) -> None:
        if not name or "/" in name or len(name.encode()) > 100:
            raise ValueError(f"invalid service name {name!r}: it must be 1 to 100 bytes and contain no '/'")
        self._name = name
        self.description = description
        self.metadata = metadata
        self.inactivity_timeout = inactivity_timeout
        self.abort_timeout = abort_timeout
        self.journal_retention = journal_retention
        self.idempotency_retention = idempotency_retention
        self.ingress_private = ingress_private
        self.invocation_retry_policy = invocation_retry_policy
        self.context_managers = invocation_context_managers or []
        self.enable_lazy_state = enable_lazy_state
        self.state_preload = state_preload
        self.handlers: dict[str, Handler] = {}

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, handlers={sorted(self.handlers)})"

    def _add_handler(
        self,
        name: str | None,
        kind: HandlerKind | None,
        accept: str,
        content_type: str,
        input_serde: Serde[typing.Any],
        output_serde: Serde[typing.Any],
        metadata: dict[str, str] | None,
        invocation_retry_policy: InvocationRetryPolicy | None,
        invocation_context_managers: list[typing.Callable[[], typing.AsyncContextManager[None]]] | None,
        options: dict[str, typing.Any],
    ) -> typing.Callable[[typing.Any], typing.Any]:
        def register(fn: typing.Any) -> typing.Any:
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"handler {fn.__qualname__} must be an `async def` function")
            signature = inspect.signature(fn, eval_str=True)
            params = list(signature.parameters.values())
            if not 1 <= len(params) <= 2:
                raise TypeError(f"handler {fn.__qualname__} must take (ctx) or (ctx, input), not {len(params)} parameters")
            handler_name = name or fn.__name__
            if handler_name in self.handlers:
                raise ValueError(f"handler {handler_name} already exists in {self._name}")
            input_hint = params[1].annotation if len(params) == 2 else None
            if input_hint is inspect.Parameter.empty:
                input_hint = None
            output_hint = signature.return_annotation
            if output_hint is inspect.Signature.empty:
                output_hint = None
            handler = Handler(
                service_name=self._name,
                service_kind=self.kind,
                name=handler_name,
                kind=kind,
                fn=fn,
                arity=len(params),
                input_serde=serde_for_hint(input_hint) if isinstance(input_serde, DefaultSerde) else input_serde,
                output_serde=serde_for_hint(output_hint) if isinstance(output_serde, DefaultSerde) else output_serde,
                input_hint=input_hint,
                output_hint=output_hint,
                accept=accept,
                content_type=content_type,
                description=inspect.getdoc(fn),
                metadata=metadata,
                invocation_retry_policy=invocation_retry_policy,
                options=dict(options, context_managers=self.context_managers + (invocation_context_managers or [])),
            )
            self.handlers[handler_name] = handler
            setattr(fn, _HANDLER_ATTRIBUTE, handler)
            return fn

        return register


_ContextManagers = typing.Optional[typing.List[typing.Callable[[], typing.AsyncContextManager[None]]]]


class Service(_Definition):
    """A stateless service: handlers run concurrently, each invocation on its own.

    The parameters (and their positions) are the official SDK's; an unknown keyword is a TypeError."""

    kind: ServiceKind = ServiceKind.SERVICE

    def __init__(
        self,
        name: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> None:
        super().__init__(
            name,
            description,
            metadata,
            inactivity_timeout,
            abort_timeout,
            journal_retention,
            idempotency_retention,
            ingress_private,
            invocation_retry_policy,
            invocation_context_managers,
        )

    def handler(
        self,
        name: str | None = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        options = dict(  # None: unset
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
        )
        return self._add_handler(
            name,
            None,
            accept,
            content_type,
            input_serde,
            output_serde,
            metadata,
            invocation_retry_policy,
            invocation_context_managers,
            options,
        )


def _check_state_preload(enable_lazy_state: bool | None, state_preload: bool | list[str] | None) -> None:
    # The SDK's rule: state_preload replaces the deprecated enable_lazy_state, so both at once is ambiguous.
    if enable_lazy_state is not None and state_preload is not None:
        raise ValueError("set either state_preload or the deprecated enable_lazy_state, not both")


class VirtualObject(_Definition):
    """Keyed state with a single writer: exclusive handlers run one at a time per key."""

    kind: ServiceKind = ServiceKind.OBJECT

    def __init__(
        self,
        name: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        enable_lazy_state: bool | None = None,
        state_preload: bool | list[str] | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> None:
        _check_state_preload(enable_lazy_state, state_preload)
        super().__init__(
            name,
            description,
            metadata,
            inactivity_timeout,
            abort_timeout,
            journal_retention,
            idempotency_retention,
            ingress_private,
            invocation_retry_policy,
            invocation_context_managers,
            enable_lazy_state,
            state_preload,
        )

    def handler(
        self,
        name: str | None = None,
        kind: typing.Literal["exclusive", "shared"] | None = "exclusive",
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        enable_lazy_state: bool | None = None,
        state_preload: bool | list[str] | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        if kind not in ("exclusive", "shared", None):
            raise ValueError(f"kind must be 'exclusive' or 'shared', not {kind!r}")
        _check_state_preload(enable_lazy_state, state_preload)
        options = dict(  # None: unset
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            enable_lazy_state=enable_lazy_state,
            state_preload=state_preload,
            ingress_private=ingress_private,
        )
        return self._add_handler(
            name,
            HandlerKind(kind) if kind else HandlerKind.EXCLUSIVE,
            accept,
            content_type,
            input_serde,
            output_serde,
            metadata,
            invocation_retry_policy,
            invocation_context_managers,
            options,
        )


class Workflow(_Definition):
    """A keyed run that executes once per workflow id, with shared handlers and durable promises."""

    kind: ServiceKind = ServiceKind.WORKFLOW

    def __init__(
        self,
        name: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        enable_lazy_state: bool | None = None,
        state_preload: bool | list[str] | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> None:
        _check_state_preload(enable_lazy_state, state_preload)
        super().__init__(
            name,
            description,
            metadata,
            inactivity_timeout,
            abort_timeout,
            journal_retention,
            idempotency_retention,
            ingress_private,
            invocation_retry_policy,
            invocation_context_managers,
            enable_lazy_state,
            state_preload,
        )

    def main(
        self,
        name: str | None = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        workflow_retention: timedelta | None = None,
        enable_lazy_state: bool | None = None,
        state_preload: bool | list[str] | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        if any(h.kind == HandlerKind.WORKFLOW for h in self.handlers.values()):
            raise ValueError(f"workflow {self.name} already has a main handler")
        _check_state_preload(enable_lazy_state, state_preload)
        options = dict(  # None: unset
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            workflow_retention=workflow_retention,
            enable_lazy_state=enable_lazy_state,
            state_preload=state_preload,
            ingress_private=ingress_private,
        )
        return self._add_handler(
            name,
            HandlerKind.WORKFLOW,
            accept,
            content_type,
            input_serde,
            output_serde,
            metadata,
            invocation_retry_policy,
            invocation_context_managers,
            options,
        )

    def handler(
        self,
        name: str | None = None,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Serde[typing.Any] = DefaultSerde(),
        output_serde: Serde[typing.Any] = DefaultSerde(),
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        enable_lazy_state: bool | None = None,
        state_preload: bool | list[str] | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        invocation_context_managers: _ContextManagers = None,
    ) -> typing.Callable[[typing.Any], typing.Any]:
        _check_state_preload(enable_lazy_state, state_preload)
        options = dict(  # None: unset
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            enable_lazy_state=enable_lazy_state,
            state_preload=state_preload,
            ingress_private=ingress_private,
        )
        return self._add_handler(
            name,
            HandlerKind.SHARED,
            accept,
            content_type,
            input_serde,
            output_serde,
            metadata,
            invocation_retry_policy,
            invocation_context_managers,
            options,
        )

    @property
    def main_handler(self) -> Handler | None:
        return next((h for h in self.handlers.values() if h.kind == HandlerKind.WORKFLOW), None)


ServiceDefinition = typing.Union[Service, VirtualObject, Workflow]
