"""The official SDK's `restate.extensions`: hooks for integrations (tracing, agent frameworks)."""

from durio.context_managers import contextvar
from durio.server_context import current_context

__all__ = ["current_context", "contextvar"]
