"""Errors handler code sees, and the runtime's control-flow exceptions.

`TerminalError` ends an invocation; any other `Exception` is retried with
backoff. Suspension and attempt aborts derive from `BaseException` so that a
handler's `except Exception:` cannot swallow them (the same split as the
official SDK's `SdkInternalBaseException`).
"""

from __future__ import annotations

import enum
from datetime import timedelta


class ErrorCode(enum.IntEnum):
    """Every status code durio itself puts on a failure, in one place."""

    BAD_REQUEST = 400
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    CONFLICT = 409  # cancelled, killed, already completed, already invoked
    PAYLOAD_TOO_LARGE = 413
    UNSUPPORTED_MEDIA_TYPE = 415
    TOO_MANY_REQUESTS = 429
    NOT_READY = 470  # Restate's "invocation output not ready yet"
    INTERNAL = 500
    SERVICE_UNAVAILABLE = 503
    JOURNAL_MISMATCH = 570  # Restate's code: replay took another path
    PROTOCOL_VIOLATION = 571


class TerminalError(Exception):
    """An error that must not be retried: the invocation fails with it."""

    def __init__(self, message: str, status_code: int = 500, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.metadata = metadata


class RetryableError(Exception):
    """A retryable error that may ask for a specific delay before the retry."""

    def __init__(self, message: str, status_code: int = 500, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class SdkInternalBaseException(BaseException):
    """Runtime control flow passing through handler code. Never catch it."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message + "\nThis is durio's control flow, not an error: do not catch it. "
            "Catch TerminalError (or Exception) instead of using a bare `except:`."
        )


class SuspendedException(SdkInternalBaseException):
    """The invocation waits for something that will take a while; its coroutine is dropped."""

    def __init__(self) -> None:
        super().__init__("The invocation is suspended; durio resumes it when what it waits for arrives.")


class SdkInternalException(SdkInternalBaseException):
    """The attempt raised a retryable error; the invocation retries from where its journal ends (the SDK's name)."""

    def __init__(self) -> None:
        super().__init__("This attempt raised a retryable error; durio retries the invocation from where it left off.")


class AttemptAborted(SdkInternalException):
    """The current attempt ends early (a run failed, a journal mismatch); the invocation retries."""

    def __init__(self, reason: str) -> None:
        SdkInternalBaseException.__init__(self, f"This attempt was aborted: {reason}")


def is_internal_exception(e: BaseException) -> bool:
    """True for durio's control-flow exceptions, which handler code must let through."""
    return isinstance(e, SdkInternalBaseException)
