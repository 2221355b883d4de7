"""Calling a handler function: decode its input, await it, encode its output."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import typing

from durio.sdk.context import Context, host_of
from durio.sdk.definitions import Handler
from durio.sdk.errors import ErrorCode, TerminalError
from durio.sdk.logs import end_running_journal, running_journal


class OutputEncodingError(Exception):
    """The handler's return value could not be written as its output type (a code bug: retried)."""


NOT_DECODED = object()

log = logging.getLogger("durio")

# The context of the handler running in this task (and its run steps and context managers).
_current_context: contextvars.ContextVar[typing.Any] = contextvars.ContextVar("durio_current_context", default=None)


def current_context() -> typing.Any:
    """The context of the handler this code runs in, or None outside a handler (the SDK's extension hook)."""
    return _current_context.get()


def extension_data(context: typing.Any) -> dict[str, typing.Any]:
    """What integrations keep with one attempt of a handler (the SDK's extension data); each value with a
    `__close__` method has it called (or awaited) when the attempt ends, however it ends."""
    data = getattr(context, "_extension_data", None)
    if data is None:
        data = context._extension_data = {}
    return data


async def _close_extension_data(context: typing.Any) -> None:
    for value in list(getattr(context, "_extension_data", {}).values()):
        close = getattr(value, "__close__", None)
        if callable(close):
            try:
                outcome = close()
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # one integration's cleanup must not hide the handler's outcome, nor stop another's
                log.exception("closing extension data %r failed", value)


async def invoke_handler(handler: Handler, context: Context, input_value: bytes, decoded: typing.Any = NOT_DECODED) -> bytes:
    """Run the handler; `decoded` is its argument when the caller already decoded `input_value`."""
    # Quiets getLogger() loggers while the handler re-issues what its journal holds.
    journal = running_journal(host_of(context).machine)
    current = _current_context.set(context)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for make_manager in handler.options.get("context_managers") or ():
                await stack.enter_async_context(make_manager())
            if handler.takes_input:
                try:
                    argument = handler.input_serde.deserialize(input_value) if decoded is NOT_DECODED else decoded
                except Exception as exc:
                    raise TerminalError(
                        f"cannot read the input of {handler.service_name}.{handler.name}: {exc}", ErrorCode.BAD_REQUEST
                    ) from exc
                result = await handler.fn(context, argument)
            else:
                result = await handler.fn(context)
    finally:
        await _close_extension_data(context)
        _current_context.reset(current)
        end_running_journal(journal)
    try:
        return handler.output_serde.serialize(result)
    except TerminalError as exc:  # a value JSON cannot carry (NaN): the same code returns it again on a retry
        raise TerminalError(
            f"{handler.service_name}.{handler.name} returned a value that cannot be its output: {exc.message}", exc.status_code
        ) from exc
    except Exception as exc:
        raise OutputEncodingError(
            f"{handler.service_name}.{handler.name} returned a {type(result).__name__} that cannot be written as its output: {exc}"
        ) from exc
