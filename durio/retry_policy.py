"""The official SDK's `restate.retry_policy`."""

from durio.sdk.options import InvocationRetryPolicy

__all__ = ["InvocationRetryPolicy"]
