"""The official SDK's `restate.workflow`."""

from durio.sdk.definitions import Workflow

__all__ = ["Workflow"]
