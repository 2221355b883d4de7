"""The official SDK's `restate.service`."""

from durio.sdk.definitions import Service

__all__ = ["Service"]
