"""Retry options: per `run` step (`RunOptions`) and per invocation (`InvocationRetryPolicy`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import timedelta

from durio.backoff import Backoff
from durio.sdk.serde import DefaultSerde, Serde

T = typing.TypeVar("T")


@dataclass
class RunOptions(typing.Generic[T]):
    """How a `ctx.run_typed` step serializes its result and retries its failures.

    With no retry field set, a failing step fails the invocation attempt and the
    invocation's own retry policy applies. Once `max_attempts` or `max_duration`
    is exhausted, the step raises `TerminalError` in the handler.
    """

    serde: Serde[T] = DefaultSerde()
    type_hint: typing.Optional[typing.Type[T]] = None
    max_attempts: typing.Optional[int] = None
    max_duration: typing.Optional[timedelta] = None
    initial_retry_interval: typing.Optional[timedelta] = None
    max_retry_interval: typing.Optional[timedelta] = None
    retry_interval_factor: typing.Optional[float] = None
    max_retry_duration: typing.Optional[timedelta] = None  # deprecated alias of max_duration


@dataclass
class InvocationRetryPolicy:
    """How failed attempts of an invocation are retried (per service or handler)."""

    initial_interval: typing.Optional[timedelta] = None
    exponentiation_factor: typing.Optional[float] = None
    max_interval: typing.Optional[timedelta] = None
    max_attempts: typing.Optional[int] = None
    on_max_attempts: typing.Optional[typing.Literal["pause", "kill"]] = None


DEFAULT_INVOCATION_BACKOFF = Backoff()


def invocation_backoff(*policies: InvocationRetryPolicy | None) -> Backoff:
    """Resolve the policies from most to least specific (handler, service) over the defaults."""
    fields: dict[str, typing.Any] = {}
    for policy in reversed([p for p in policies if p is not None]):
        if policy.initial_interval is not None:
            fields["initial_s"] = policy.initial_interval.total_seconds()
        if policy.exponentiation_factor is not None:
            fields["factor"] = policy.exponentiation_factor
        if policy.max_interval is not None:
            fields["max_s"] = policy.max_interval.total_seconds()
        if policy.max_attempts is not None:
            fields["max_attempts"] = policy.max_attempts
        if policy.on_max_attempts is not None:
            fields["on_max_attempts"] = policy.on_max_attempts
    return Backoff(**fields)


def run_backoff(options: RunOptions[typing.Any]) -> Backoff | None:
    """The step's own backoff, or None when it sets no retry field (the invocation's applies)."""
    max_duration = options.max_duration or options.max_retry_duration
    if all(
        value is None
        for value in (
            options.max_attempts,
            max_duration,
            options.initial_retry_interval,
            options.max_retry_interval,
            options.retry_interval_factor,
        )
    ):
        return None
    return Backoff(
        initial_s=options.initial_retry_interval.total_seconds() if options.initial_retry_interval else 0.05,
        factor=options.retry_interval_factor or 2.0,
        max_s=options.max_retry_interval.total_seconds() if options.max_retry_interval else 10.0,
        max_attempts=options.max_attempts,
        max_duration_s=max_duration.total_seconds() if max_duration else None,
    )
