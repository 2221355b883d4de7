"""Handler logs that stay quiet while a journal is replayed.

A handler runs again from the top after every suspension or retry, so a plain
`logging` call in it prints once per replay. `getLogger` (the official SDK's
name) returns a logger whose filter drops records while the handler is still
re-issuing the commands its journal already holds.
"""

from __future__ import annotations

import contextvars
import logging
import typing

# The journal machine of the invocation whose handler runs in this task (and in its run steps).
_running_journal: contextvars.ContextVar[typing.Any] = contextvars.ContextVar("durio_running_journal", default=None)


def running_journal(machine: typing.Any) -> contextvars.Token[typing.Any]:
    """Mark the current task as running a handler over `machine`; reset with the returned token."""
    return _running_journal.set(machine)


def end_running_journal(token: contextvars.Token[typing.Any]) -> None:
    _running_journal.reset(token)


def is_replaying() -> bool:
    machine = _running_journal.get()
    return bool(machine is not None and machine.replaying)


class RestateLoggingFilter(logging.Filter):
    """Drops records logged while the current handler replays its journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return super().filter(record) and not is_replaying()


def getLogger(name: str | None = None) -> logging.Logger:  # noqa: N802 (the official SDK's name)
    """`logging.getLogger(name)`, quiet during replays."""
    logger = logging.getLogger(name)
    if not any(isinstance(existing, RestateLoggingFilter) for existing in logger.filters):
        logger.addFilter(RestateLoggingFilter())
    return logger
