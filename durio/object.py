"""The official SDK's `restate.object`."""

from durio.sdk.definitions import VirtualObject

__all__ = ["VirtualObject"]
