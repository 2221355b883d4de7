"""durio: durable execution for Python, in the style of Restate, built on AnyIO (Trio by default, or asyncio).

This module is the public API. Its names are the official Restate Python
SDK's, so handler code written for `restate` runs on durio with
`import durio as restate`; the SDK's modules are durio's too (`durio.exceptions`,
`durio.serde`, ...), and `durio.install_as_restate()` makes `import restate` and
`from restate.exceptions import ...` import durio.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys as _sys
import types as _types
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
    from durio import logging
    from durio.client import create_client
    from durio.client_types import HttpError, RestateClient, RestateClientSendHandle
    from durio.connection import ConnectError, connect, with_connection
    from durio.context import ScopedContext
    from durio.entry_codec import JournalValueCodec, JournalValueCodecProvider
    from durio.harness import create_test_harness, test_harness
    from durio.types import HarnessEnvironment
    from durio.schedules.declare import scheduled

# Where each public name lives. They load on first use, so that `durio.journal` (the sans-IO
# journal machine) and `durio.ids` import without Trio, LMDB or hypercorn, and the CLI starts fast.
_SOURCES = {
    "as_completed": "durio.sdk.combinators",
    "gather": "durio.sdk.combinators",
    "select": "durio.sdk.combinators",
    "wait_completed": "durio.sdk.combinators",
    "Context": "durio.sdk.context",
    "ObjectContext": "durio.sdk.context",
    "ObjectSharedContext": "durio.sdk.context",
    "Request": "durio.sdk.context",
    "WorkflowContext": "durio.sdk.context",
    "WorkflowSharedContext": "durio.sdk.context",
    "Service": "durio.sdk.definitions",
    "VirtualObject": "durio.sdk.definitions",
    "Workflow": "durio.sdk.definitions",
    "RetryableError": "durio.sdk.errors",
    "SdkInternalBaseException": "durio.sdk.errors",
    "TerminalError": "durio.sdk.errors",
    "is_internal_exception": "durio.sdk.errors",
    "DurablePromise": "durio.sdk.futures",
    "RestateDurableCallFuture": "durio.sdk.futures",
    "RestateDurableFuture": "durio.sdk.futures",
    "RestateDurableSleepFuture": "durio.sdk.futures",
    "SendHandle": "durio.sdk.futures",
    "RestateLoggingFilter": "durio.sdk.logs",
    "getLogger": "durio.sdk.logs",
    "InvocationRetryPolicy": "durio.sdk.options",
    "RunOptions": "durio.sdk.options",
    "BytesSerde": "durio.sdk.serde",
    "DefaultSerde": "durio.sdk.serde",
    "JsonSerde": "durio.sdk.serde",
    "PydanticJsonSerde": "durio.sdk.serde",
    "Serde": "durio.sdk.serde",
    "app": "durio.server",
    "serve": "durio.server",
    "create_client": "durio.client",
    "HttpError": "durio.client_types",
    "RestateClient": "durio.client_types",
    "RestateClientSendHandle": "durio.client_types",
    "ConnectError": "durio.connection",
    "connect": "durio.connection",
    "with_connection": "durio.connection",
    "ScopedContext": "durio.context",
    "JournalValueCodec": "durio.entry_codec",
    "JournalValueCodecProvider": "durio.entry_codec",
    "create_test_harness": "durio.harness",
    "test_harness": "durio.harness",
    "HarnessEnvironment": "durio.types",
    "scheduled": "durio.schedules.declare",  # a durio extension: the official SDK has no schedules
}

# The official SDK's public modules, each at the same name under durio (`restate.exceptions` is
# `durio.exceptions`). install_as_restate() aliases exactly these.
_SDK_MODULES = (
    "exceptions",
    "serde",
    "context",
    "service",
    "object",
    "workflow",
    "retry_policy",
    "asyncio",
    "logging",
    "extensions",
    "context_managers",
    "server_context",
    "endpoint",
    "entry_codec",
    "client",
    "client_types",
    "harness",
    "types",
    "connection",
    "_preview",
    "ext",
    "ext.tracing",
    "ext.turnstile",
)

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
    "ScopedContext",
    "JournalValueCodec",
    "JournalValueCodecProvider",
    "connect",
    "with_connection",
    "ConnectError",
    "create_test_harness",
    "test_harness",
    "HarnessEnvironment",
    "logging",
    "RestateClient",
    "RestateClientSendHandle",
    "HttpError",
    "create_client",
    "install_as_restate",
    "scheduled",
]


class _RestateAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `restate.X` as durio's `durio.X`: the same module object under both names."""

    def find_spec(
        self, fullname: str, path: typing.Any = None, target: typing.Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("restate."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> _types.ModuleType:
        # A module durio lacks fails as it would for the real package, naming the restate module.
        durio_name = "durio." + spec.name.partition(".")[2]
        try:
            return importlib.import_module(durio_name)
        except ModuleNotFoundError as exc:
            if exc.name != durio_name:
                raise
            raise ModuleNotFoundError(f"No module named {spec.name!r} (durio has no {durio_name})", name=spec.name) from None

    def exec_module(self, module: _types.ModuleType) -> None:
        pass  # already executed under its durio name


def install_as_restate() -> None:
    """Make `import restate` (and `restate.exceptions`, `restate.serde`, ...) import durio.

    Call it once, before the first `import restate`, e.g. at the top of the entry point or a conftest:

        import durio; durio.install_as_restate()

    It replaces a `restate` package imported earlier in this process (its modules are dropped from
    sys.modules), so that one name means one implementation.
    """
    this = _sys.modules[__name__]
    for name in [name for name in _sys.modules if name == "restate" or name.startswith("restate.")]:
        if not getattr(_sys.modules[name], "__name__", "").startswith("durio"):
            del _sys.modules[name]
    if not any(isinstance(finder, _RestateAlias) for finder in _sys.meta_path):
        _sys.meta_path.insert(0, _RestateAlias())
    _sys.modules["restate"] = this
    for module in _SDK_MODULES:
        if f"durio.{module}" in _sys.modules:  # loaded already: make it reachable as restate.X at once
            _sys.modules[f"restate.{module}"] = _sys.modules[f"durio.{module}"]


def __getattr__(name: str) -> typing.Any:
    if name in _SDK_MODULES:  # `restate.exceptions.TerminalError` works without importing it first
        return importlib.import_module(f"durio.{name}")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'durio' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
