"""The official SDK's `restate.connection` (1.3): serving an app through an outbound tunnel to Restate Cloud.

The tunnel is Restate Cloud's own service, reached through the SDK's native core; durio has no such
core and no cloud. The names exist so that code naming them imports, and calling them says plainly
what to do instead, rather than failing at import or hanging.
"""

from __future__ import annotations

import contextlib
import typing

_INSTEAD = (
    "Restate Cloud's outbound connection (restate.connect) is not available in durio: serve the app "
    "(hypercorn --worker-class trio, or `durio serve`) and register its URL with the server instead"
)


class ConnectError(Exception):
    """The outbound connection could not be made (with durio: never, see the module docstring)."""


class Connection:
    """The live connection `with_connection` yields in the SDK; durio never yields one."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        raise ConnectError(_INSTEAD)


@contextlib.asynccontextmanager
async def with_connection(
    app: typing.Any, *, name: str | None = None, key: str | None = None
) -> typing.AsyncIterator[Connection]:
    raise ConnectError(_INSTEAD)
    yield  # pragma: no cover (makes this an async generator)


async def connect(app: typing.Any, *, name: str | None = None, key: str | None = None) -> None:
    raise ConnectError(_INSTEAD)


__all__ = ["connect", "with_connection", "Connection", "ConnectError"]
