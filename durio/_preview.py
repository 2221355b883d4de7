"""The official SDK's `restate._preview` (APIs in preview)."""

from __future__ import annotations

import typing

T = typing.TypeVar("T")


def explicit_recovery(target: T) -> T:
    """Run handlers without replaying earlier attempts' journals: not implemented by durio.

    Raised at decoration time rather than ignored: a handler written for explicit recovery
    re-executes its steps on purpose, and replaying it instead would change what it does."""
    raise NotImplementedError("durio does not implement restate._preview.explicit_recovery: handlers always replay their journal")


__all__ = ["explicit_recovery"]
