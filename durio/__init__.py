"""durio: durable execution for Python, in the style of Restate, built on Trio.

This module is the public API. Its names are the official Restate Python
SDK's, so handler code written for `restate` runs on durio with
`import durio as restate`.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from durio.sdk.combinators import as_completed, gather, select, wait_completed
    from durio.sdk.context import (
        Context,
        ObjectContext,
        ObjectSharedContext,
        Request,
        WorkflowContext,
        WorkflowSharedContext,
    )
    from durio.sdk.definitions import Service, VirtualObject, Workflow
    from durio.sdk.errors import RetryableError, SdkInternalBaseException, TerminalError, is_internal_exception
    from durio.sdk.futures import (
        DurablePromise,
        RestateDurableCallFuture,
        RestateDurableFuture,
        RestateDurableSleepFuture,
        SendHandle,
    )
    from durio.sdk.logs import RestateLoggingFilter, getLogger
    from durio.sdk.options import InvocationRetryPolicy, RunOptions
    from durio.sdk.serde import BytesSerde, DefaultSerde, JsonSerde, PydanticJsonSerde, Serde
    from durio.server import app, serve

# Where each public name lives. They load on first use, so that `durio.journal` (the sans-IO
# journal machine) and `durio.ids` import without Trio, LMDB or hypercorn, and the CLI starts fast.
_SOURCES = {
    "as_completed": "durio.sdk.combinators", "gather": "durio.sdk.combinators",
    "select": "durio.sdk.combinators", "wait_completed": "durio.sdk.combinators",
    "Context": "durio.sdk.context", "ObjectContext": "durio.sdk.context",
    "ObjectSharedContext": "durio.sdk.context", "Request": "durio.sdk.context",
    "WorkflowContext": "durio.sdk.context", "WorkflowSharedContext": "durio.sdk.context",
    "Service": "durio.sdk.definitions", "VirtualObject": "durio.sdk.definitions", "Workflow": "durio.sdk.definitions",
    "RetryableError": "durio.sdk.errors", "SdkInternalBaseException": "durio.sdk.errors",
    "TerminalError": "durio.sdk.errors", "is_internal_exception": "durio.sdk.errors",
    "DurablePromise": "durio.sdk.futures", "RestateDurableCallFuture": "durio.sdk.futures",
    "RestateDurableFuture": "durio.sdk.futures", "RestateDurableSleepFuture": "durio.sdk.futures",
    "SendHandle": "durio.sdk.futures",
    "RestateLoggingFilter": "durio.sdk.logs", "getLogger": "durio.sdk.logs",
    "InvocationRetryPolicy": "durio.sdk.options", "RunOptions": "durio.sdk.options",
    "BytesSerde": "durio.sdk.serde", "DefaultSerde": "durio.sdk.serde", "JsonSerde": "durio.sdk.serde",
    "PydanticJsonSerde": "durio.sdk.serde", "Serde": "durio.sdk.serde",
    "app": "durio.server", "serve": "durio.server",
}

__all__ = [
    "Service",
    "VirtualObject",
    "Workflow",
    "Context",
    "ObjectContext",
    "ObjectSharedContext",
    "WorkflowContext",
    "WorkflowSharedContext",
    "Request",
    "DurablePromise",
    "RestateDurableFuture",
    "RestateDurableCallFuture",
    "RestateDurableSleepFuture",
    "SendHandle",
    "RunOptions",
    "InvocationRetryPolicy",
    "TerminalError",
    "RetryableError",
    "SdkInternalBaseException",
    "is_internal_exception",
    "Serde",
    "DefaultSerde",
    "JsonSerde",
    "BytesSerde",
    "PydanticJsonSerde",
    "gather",
    "select",
    "as_completed",
    "wait_completed",
    "getLogger",
    "RestateLoggingFilter",
    "app",
    "serve",
]


def __getattr__(name: str) -> typing.Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'durio' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
