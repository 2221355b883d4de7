"""The official SDK's `restate.exceptions`: what handler code raises and what it must let through."""

from durio.sdk.errors import (
    RetryableError,
    SdkInternalBaseException,
    SdkInternalException,
    SuspendedException,
    TerminalError,
    is_internal_exception,
)

__all__ = [
    "TerminalError",
    "RetryableError",
    "SdkInternalBaseException",
    "SuspendedException",
    "SdkInternalException",
    "is_internal_exception",
]
