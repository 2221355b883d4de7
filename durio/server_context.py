"""The names user code and integrations take from the official SDK's `restate.server_context` (the rest is
its runtime): the running handler's context, and data an integration keeps with one attempt of it."""

from __future__ import annotations

import typing

from durio.sdk.invoke import current_context, extension_data


def set_extension_data(ctx: typing.Any, key: str, value: typing.Any) -> None:
    """Keep `value` with this attempt; if it has `__close__`, that is called when the attempt ends."""
    extension_data(ctx)[key] = value


def get_extension_data(ctx: typing.Any, key: str) -> typing.Any:
    return extension_data(ctx).get(key)


def clear_extension_data(ctx: typing.Any, key: str) -> None:
    extension_data(ctx).pop(key, None)


__all__ = ["current_context", "set_extension_data", "get_extension_data", "clear_extension_data"]
