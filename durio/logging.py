"""The official SDK's `restate.logging`: loggers that stay quiet while a handler replays its journal."""

from durio.sdk.logs import RestateLoggingFilter, getLogger

__all__ = ["getLogger", "RestateLoggingFilter"]
