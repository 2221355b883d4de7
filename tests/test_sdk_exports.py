"""durio's public surface against the installed official SDK (restate-sdk): names, modules, signatures.

Handler code written for `restate` must run on durio after `import durio as restate` (or
`durio.install_as_restate()`). This test walks the SDK's public modules and compares, name by name,
parameter by parameter (names, kinds, order, defaults), so a gap shows up here when the SDK moves.
What durio deliberately does differently is listed below with the reason; README.md lists it too.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import subprocess
import sys
import types
import typing

import pytest

import durio

restate = pytest.importorskip("restate")

# The SDK's modules user code imports, each expected at the same name under durio.
PUBLIC_MODULES = [
    "restate",
    "restate.exceptions",
    "restate.serde",
    "restate.context",
    "restate.service",
    "restate.object",
    "restate.workflow",
    "restate.retry_policy",
    "restate.asyncio",
    "restate.logging",
    "restate.extensions",
    "restate.context_managers",
    "restate.server_context",
    "restate.endpoint",
    "restate.entry_codec",
    "restate.client",
    "restate.client_types",
    "restate.harness",
    "restate.types",
    "restate.connection",
    "restate._preview",
    "restate.ext.turnstile",
] + (["restate.ext.tracing"] if importlib.util.find_spec("opentelemetry") else [])

# The SDK's modules that are its runtime, not its API: durio has its own runtime in their place.
INTERNAL_MODULES = {
    "restate._internal": "the SDK's native (Rust) core; durio's journal machine is durio.journal",
    "restate.vm": "wrapper of the native state machine",
    "restate.server": "the SDK's ASGI server loop; durio's is durio.protocol.endpoint",
    "restate.server_types": "ASGI type aliases of the SDK's server",
    "restate.discovery": "the SDK's manifest writer; durio's is durio.protocol.manifest",
    "restate.handler": "the SDK's handler records; durio's are durio.sdk.definitions",
    "restate.aws_lambda": "AWS Lambda wrapping; durio serves ASGI (hypercorn, uvicorn) and its own server",
    "restate.__main__": "`python -m restate connect`, Restate Cloud's tunnel (see restate.connection)",
    "restate.ext.openai": "the AI-agent integrations' durable wrappers are not ported: importing durio.ext.openai "
    "(and .pydantic, .adk, .langchain) raises ImportError saying so",
}

# Names in a public module that are the SDK's internals there, not API (module -> name -> reason).
INTERNAL_NAMES: dict[str, dict[str, str]] = {
    "restate.serde": {
        "DaciteFromDict": "dacite glue of the SDK's DefaultSerde",
        "DaciteToDict": "dacite glue",
        "Msgspec": "the SDK's lazily imported msgspec module",
        "MsgspecJsonAPI": "its protocol type",
        "try_import_from_dacite": "import helper",
        "try_import_msgspec_api": "import helper",
        "try_import_pydantic_base_model": "import helper",
    },
    "restate.logging": {"restate_context_is_replaying": "the SDK runtime's ContextVar (durio: durio.sdk.logs)"},
    "restate.server_context": {},  # only current_context is API; everything else there is the SDK's runtime
    "restate.harness": {
        "find_free_port": "Docker plumbing",
        "run_in_background": "Docker plumbing",
        "BindAddress": "Docker plumbing",
        "TcpSocketBindAddress": "Docker plumbing",
        "AsgiServer": "hypercorn-in-a-thread for the container to call",
        "RestateContainer": "the Docker container durio's harness replaces",
        "create_app_server": "Docker plumbing",
        "create_restate_container": "Docker plumbing",
    },
    "restate.connection": {"TunnelInfo": "metadata of Restate Cloud's tunnel, which durio does not have"},
    "restate.types": {"extract_core_type": "a type-hint helper of the SDK's serde selection"},
    "restate.client": {},
}
SERVER_CONTEXT_API = {"current_context", "set_extension_data", "get_extension_data", "clear_extension_data"}

# Deliberate differences of signature, by qualified name (in whichever module the SDK offers it) -> reason.
SIGNATURE_DIFFERENCES: dict[str, str] = {
    "DurablePromise.__init__": "durio's promise is bound to the context that made it (`ctx.promise(name)`, the only "
    "way handler code gets one in either SDK), so its constructor takes the host that context records into",
    "Client.do_call": "the SDK client's internal helpers; durio's Client has its own",
    "Client.do_raw_call": "the SDK client's internal helpers",
    "Client.post": "the SDK client's internal helpers",
    "RestateTestHarness.bind_address": "the Docker harness's plumbing: durio's harness runs no container",
    "RestateTestHarness.server": "the Docker harness's plumbing",
    "RestateTestHarness.restate": "the Docker harness's container",
    "Connection": "Restate Cloud's tunnel needs the SDK's native core: durio's connect/with_connection raise "
    "ConnectError saying so, and never yield a Connection",
}


def _sdk_harness_module() -> types.ModuleType:
    """restate.harness imports testcontainers (Docker); stand-ins let its signatures be read without it."""
    try:
        return importlib.import_module("restate.harness")
    except ImportError:
        pass
    fake_modules = {}
    for name in ("testcontainers", "testcontainers.core", "testcontainers.core.container", "testcontainers.core.wait_strategies"):
        fake_modules[name] = types.ModuleType(name)
    fake_modules["testcontainers.core.container"].DockerContainer = type("DockerContainer", (), {})  # type: ignore[attr-defined]
    fake_modules["testcontainers.core.wait_strategies"].CompositeWaitStrategy = object  # type: ignore[attr-defined]
    fake_modules["testcontainers.core.wait_strategies"].HttpWaitStrategy = object  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in fake_modules}
    sys.modules.update(fake_modules)
    try:
        return importlib.import_module("restate.harness")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _sdk_module(name: str) -> types.ModuleType:
    return _sdk_harness_module() if name == "restate.harness" else importlib.import_module(name)


def _durio_module(name: str) -> types.ModuleType:
    return importlib.import_module("durio" + name[len("restate") :])


def _public_names(module: types.ModuleType) -> set[str]:
    """What the module offers: its __all__, else the public names it defines (not type variables)."""
    if module.__name__ == "restate.server_context":
        return set(SERVER_CONTEXT_API)
    exported = getattr(module, "__all__", None)
    if exported is not None:
        names = set(exported)
    else:
        names = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and not isinstance(value, (types.ModuleType, typing.TypeVar, typing.ParamSpec))
            and getattr(value, "__module__", module.__name__) == module.__name__
        }
    return names - set(INTERNAL_NAMES.get(module.__name__, {}))


def _module_pairs() -> list[tuple[str, str]]:
    return [(module, name) for module in PUBLIC_MODULES for name in sorted(_public_names(_sdk_module(module)))]


def test_every_public_module_of_the_sdk_exists_under_durio() -> None:
    for name in PUBLIC_MODULES:
        _durio_module(name)


@pytest.mark.parametrize(("module", "name"), _module_pairs())
def test_every_public_name_of_the_sdk_exists_in_the_same_durio_module(module: str, name: str) -> None:
    assert hasattr(_durio_module(module), name), f"durio{module[len('restate') :]}.{name} is missing"


def _default(value: typing.Any) -> typing.Any:
    """Defaults compared by value, or by type for objects (a DefaultSerde() is not equal to another)."""
    if value is inspect.Parameter.empty or value is None or isinstance(value, (str, int, float, bool, tuple)):
        return value
    return type(value).__name__


def _shape(fn: typing.Any) -> list[tuple[str, str, typing.Any]]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [(p.name, p.kind.name, _default(p.default)) for p in signature.parameters.values()]


def _members(cls: type) -> dict[str, typing.Any]:
    """A class's public methods and properties (its __init__ too), found along its MRO."""
    found: dict[str, typing.Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__ in ("abc", "typing", "builtins", "logging"):
            continue
        for name, value in vars(klass).items():
            if name == "__init__" or not name.startswith("_"):
                found[name] = value
    return found


def _signature_cases() -> list[tuple[str, str]]:
    cases = []
    for module, name in _module_pairs():
        value = getattr(_sdk_module(module), name)
        if inspect.isclass(value) or callable(value):
            cases.append((module, name))
    return cases


@pytest.mark.parametrize(("module", "name"), _signature_cases())
def test_every_public_callable_takes_the_sdks_parameters(module: str, name: str) -> None:
    sdk_value = getattr(_sdk_module(module), name)
    ours = getattr(_durio_module(module), name, None)
    assert ours is not None, f"{name} is missing"
    problems = []
    if name in SIGNATURE_DIFFERENCES:
        return
    if inspect.isclass(sdk_value):
        assert inspect.isclass(ours), f"{name} is not a class in durio"
        if dataclasses.is_dataclass(sdk_value):
            sdk_fields = [(f.name, _default(f.default)) for f in dataclasses.fields(sdk_value)]
            our_fields = (
                [(f.name, _default(f.default)) for f in dataclasses.fields(ours)] if dataclasses.is_dataclass(ours) else []
            )
            if sdk_fields != our_fields:
                problems.append(f"fields: SDK {sdk_fields}, durio {our_fields}")
        our_members = _members(ours)
        for member, sdk_member in _members(sdk_value).items():
            if f"{name}.{member}" in SIGNATURE_DIFFERENCES:
                continue
            if member not in our_members:
                problems.append(f"{name}.{member} is missing")
                continue
            sdk_fn = sdk_member.fget if isinstance(sdk_member, property) else sdk_member
            our_fn = our_members[member].fget if isinstance(our_members[member], property) else our_members[member]
            if isinstance(sdk_member, property) != isinstance(our_members[member], property):
                problems.append(f"{name}.{member}: property in one, not the other")
            elif callable(sdk_fn) and _shape(sdk_fn) != _shape(our_fn):
                problems.append(f"{name}.{member}: SDK {_shape(sdk_fn)}\n    durio {_shape(our_fn)}")
    elif _shape(sdk_value) != _shape(ours):
        problems.append(f"{name}: SDK {_shape(sdk_value)}\n    durio {_shape(ours)}")
    assert not problems, "\n".join(problems)


CONTEXT_CLASSES = ["Context", "ObjectContext", "ObjectSharedContext", "WorkflowContext", "WorkflowSharedContext"]

# issubclass relations durio has and the SDK has not, with the reason.
EXTRA_RELATIONS: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("name", CONTEXT_CLASSES)
def test_context_classes_relate_as_in_the_sdk(name: str) -> None:
    for other in CONTEXT_CLASSES:
        official = issubclass(getattr(restate, name), getattr(restate, other))
        ours = issubclass(getattr(durio, name), getattr(durio, other))
        if (name, other) in EXTRA_RELATIONS:
            assert ours and not official, "listed as a difference, but is none any more"
            continue
        assert ours == official, f"issubclass({name}, {other}): SDK {official}, durio {ours}"
    assert issubclass(durio.ObjectContext, durio.context.KeyValueStore)


def test_install_as_restate_makes_the_sdks_import_lines_work() -> None:
    # In a child process: this one has the real SDK imported, which other tests use.
    script = """
import durio
durio.install_as_restate()
import restate
from restate.exceptions import TerminalError
from restate.serde import PydanticJsonSerde, JsonSerde
from restate.context import Context, ObjectContext
from restate.service import Service
from restate.object import VirtualObject
from restate.workflow import Workflow
from restate.retry_policy import InvocationRetryPolicy
from restate.extensions import current_context
from restate.logging import getLogger
import restate.client, restate.harness
assert restate is durio and TerminalError is durio.TerminalError and restate.logging is durio.logging
try:
    import restate.vm
except ModuleNotFoundError as exc:
    assert "restate.vm" in str(exc)
else:
    raise AssertionError("restate.vm is the SDK's internal module, durio has none")
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_install_as_restate_replaces_an_sdk_imported_before() -> None:
    script = """
import restate, restate.exceptions
import durio
durio.install_as_restate()
import restate as again
from restate.exceptions import TerminalError
assert again is durio and TerminalError is durio.TerminalError
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
