"""The official SDK's `restate.context_managers`: `contextvar`, for invocation context managers that yield a value.

`invocation_context_managers` take factories of context managers that yield None; `@contextvar` wraps one
that yields a value, keeps that value in a ContextVar while it is entered, and offers it as `.value`.
"""

from __future__ import annotations

import contextlib
import contextvars
import typing

P = typing.ParamSpec("P")
T = typing.TypeVar("T")


class contextvar(typing.Generic[P, T]):  # noqa: N801 (the official SDK's name)
    """Decorate an async context manager factory; `.value` is what the entered manager yielded."""

    def __init__(self, func: typing.Callable[P, typing.AsyncContextManager[T]]) -> None:
        self.func = func
        self._value: contextvars.ContextVar[T | None] = contextvars.ContextVar(
            f"contextvar {getattr(func, '__qualname__', func)!r}", default=None
        )

    @property
    def value(self) -> T:
        value = self._value.get()
        if value is None:
            raise LookupError("the context manager's value is only available while it is entered")
        return value

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> typing.AsyncContextManager[None]:
        return self._entered(self.func(*args, **kwargs))

    @contextlib.asynccontextmanager
    async def _entered(self, manager: typing.AsyncContextManager[T]) -> typing.AsyncIterator[None]:
        async with manager as value:
            token = self._value.set(value)
            try:
                yield None
            finally:
                self._value.reset(token)


__all__ = ["contextvar"]
