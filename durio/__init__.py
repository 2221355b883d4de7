"""durio: durable execution for Python, in the style of Restate, built on Trio.

This module is the public API. Its names are the official Restate Python
SDK's, so handler code written for `restate` runs on durio with
`import durio as restate`.
"""

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
