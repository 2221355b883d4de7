"""The names user code takes from the official SDK's `restate.server_context` (the rest is its runtime)."""

from durio.sdk.invoke import current_context

__all__ = ["current_context"]
