"""The public API is deliberate: the names handler code imports, and the official SDK's names."""

from __future__ import annotations

import inspect

import durio

EXPECTED = {
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
    # The rest of the official SDK's top-level names (issue 14), and the alias installer.
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
    # durio's extensions beyond the official SDK.
    "scheduled",
}


def test_the_public_names_are_exactly_these() -> None:
    assert set(durio.__all__) == EXPECTED
    for name in durio.__all__:
        assert hasattr(durio, name), name


def test_context_methods_have_the_official_sdks_names() -> None:
    methods = {
        durio.Context: [
            "request",
            "random",
            "uuid",
            "time",
            "run",
            "run_typed",
            "sleep",
            "service_call",
            "service_send",
            "object_call",
            "object_send",
            "workflow_call",
            "workflow_send",
            "generic_call",
            "generic_send",
            "awakeable",
            "resolve_awakeable",
            "reject_awakeable",
            "cancel_invocation",
            "attach_invocation",
        ],
        durio.ObjectContext: ["key", "get", "set", "clear", "clear_all", "state_keys"],
        durio.ObjectSharedContext: ["key", "get", "state_keys"],
        durio.WorkflowContext: ["promise", "key", "get", "set"],
        durio.WorkflowSharedContext: ["promise", "key", "get"],
    }
    for cls, names in methods.items():
        for name in names:
            assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name}"


def test_run_typed_takes_the_official_positional_only_signature() -> None:
    parameters = list(inspect.signature(durio.Context.run_typed).parameters.values())
    assert [p.name for p in parameters[:4]] == ["self", "name", "action", "options"]
    assert parameters[1].kind is inspect.Parameter.POSITIONAL_ONLY


def test_workflow_contexts_are_object_contexts() -> None:
    assert issubclass(durio.WorkflowContext, durio.ObjectContext)
    assert issubclass(durio.WorkflowSharedContext, durio.ObjectSharedContext)


def test_control_flow_exceptions_escape_except_exception() -> None:
    assert issubclass(durio.SdkInternalBaseException, BaseException)
    assert not issubclass(durio.SdkInternalBaseException, Exception)
    assert issubclass(durio.TerminalError, Exception)
