"""The journal's vocabulary: commands a handler issues and notifications that complete them.

It follows Restate's V5/V6 service protocol: commands (Input, Output, Run,
Sleep, Call, OneWayCall, state, promises, CompleteAwakeable, SendSignal,
SendNamedSignal, AttachInvocation, GetInvocationOutput) carry the completion ids
they will be completed with; notifications carry a completion id, a signal index
or a signal name, and a result. A journal is one sequence of both, in the order they became durable.

A result is `bytes` (a value), `Failure`, `None` (void), a `str` (an
invocation id) or a `list[str]` (state keys).
"""

from __future__ import annotations

import hashlib
import typing
from dataclasses import dataclass, field

CANCEL_SIGNAL = 1  # Restate's reserved signal index for cancellation
FIRST_AWAKEABLE_SIGNAL = 17  # indexes 1..16 are reserved for built-in signals
# Handles of named signals (ctx.signal(name)) lie below -NAMED_SIGNAL_BASE, apart from indexed signals'
# (a u32 index) and completion ids (positive); see named_signal_handle.
NAMED_SIGNAL_BASE = 1 << 32


@dataclass(frozen=True, slots=True)
class Failure:
    """A terminal failure, as stored and as sent over the protocol."""

    code: int
    message: str
    metadata: dict[str, str] | None = None


Result = typing.Union[bytes, Failure, None, str, list]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a call goes: service, handler and, for objects and workflows, the key."""

    service: str
    handler: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.service}/{self.key}/{self.handler}" if self.key is not None else f"{self.service}/{self.handler}"


@dataclass(slots=True, kw_only=True)
class Entry:
    """A journal entry. `ts` is when it was recorded (ms since the epoch), for humans only."""

    ts: int = 0
    is_command: typing.ClassVar[bool] = True
    type_name: typing.ClassVar[str] = "entry"

    def matches(self, other: "Entry") -> bool:
        """Whether a command issued on replay is the same command as this stored one."""
        return type(self) is type(other) and self.identity() == other.identity()

    def identity(self) -> tuple:
        """The fields a replay must reproduce; results and ids assigned on recording are left out."""
        return ()

    def describe(self) -> str:
        return self.type_name


# ---------------------------------------------------------------- commands


@dataclass(slots=True, kw_only=True)
class Input(Entry):
    type_name: typing.ClassVar[str] = "input"
    value: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Output(Entry):
    type_name: typing.ClassVar[str] = "output"
    result: bytes | Failure = b""
    name: str = ""


@dataclass(slots=True, kw_only=True)
class Run(Entry):
    type_name: typing.ClassVar[str] = "run"
    name: str
    completion_id: int

    def identity(self) -> tuple:
        return (self.name,)

    def describe(self) -> str:
        return f"run '{self.name}'"


@dataclass(slots=True, kw_only=True)
class Sleep(Entry):
    type_name: typing.ClassVar[str] = "sleep"
    wake_up_ms: int
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.name,)

    def describe(self) -> str:
        return f"sleep '{self.name}'" if self.name else "sleep"


@dataclass(slots=True, kw_only=True)
class Call(Entry):
    type_name: typing.ClassVar[str] = "call"
    target: Target
    value: bytes
    completion_id: int
    invocation_id_completion_id: int
    callee_id: str = ""  # assigned when recorded
    headers: list[tuple[str, str]] = field(default_factory=list)
    idempotency_key: str | None = None
    name: str = ""

    def identity(self) -> tuple:
        return (self.target, self.name)

    def describe(self) -> str:
        return f"call to {self.target}"


@dataclass(slots=True, kw_only=True)
class OneWayCall(Entry):
    type_name: typing.ClassVar[str] = "one_way_call"
    target: Target
    value: bytes
    invoke_at_ms: int  # 0 for now
    invocation_id_completion_id: int
    callee_id: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    idempotency_key: str | None = None
    name: str = ""

    def identity(self) -> tuple:
        return (self.target, self.name)

    def describe(self) -> str:
        return f"send to {self.target}"


@dataclass(slots=True, kw_only=True)
class GetState(Entry):
    """An eager state read: the value (None when unset) is stored with the command."""

    type_name: typing.ClassVar[str] = "get_state"
    key: str
    value: bytes | None = None
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)

    def describe(self) -> str:
        return f"get state '{self.key}'"


@dataclass(slots=True, kw_only=True)
class GetLazyState(Entry):
    """A state read completed by a notification (remote deployments with lazy state)."""

    type_name: typing.ClassVar[str] = "get_lazy_state"
    key: str
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)


@dataclass(slots=True, kw_only=True)
class GetStateKeys(Entry):
    type_name: typing.ClassVar[str] = "get_state_keys"
    keys: list[str] = field(default_factory=list)
    name: str = ""


@dataclass(slots=True, kw_only=True)
class GetLazyStateKeys(Entry):
    type_name: typing.ClassVar[str] = "get_lazy_state_keys"
    completion_id: int
    name: str = ""


@dataclass(slots=True, kw_only=True)
class SetState(Entry):
    type_name: typing.ClassVar[str] = "set_state"
    key: str
    value: bytes
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)

    def describe(self) -> str:
        return f"set state '{self.key}'"


@dataclass(slots=True, kw_only=True)
class ClearState(Entry):
    type_name: typing.ClassVar[str] = "clear_state"
    key: str
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)

    def describe(self) -> str:
        return f"clear state '{self.key}'"


@dataclass(slots=True, kw_only=True)
class ClearAllState(Entry):
    type_name: typing.ClassVar[str] = "clear_all_state"
    name: str = ""


@dataclass(slots=True, kw_only=True)
class GetPromise(Entry):
    type_name: typing.ClassVar[str] = "get_promise"
    key: str
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)

    def describe(self) -> str:
        return f"get promise '{self.key}'"


@dataclass(slots=True, kw_only=True)
class PeekPromise(Entry):
    type_name: typing.ClassVar[str] = "peek_promise"
    key: str
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)

    def describe(self) -> str:
        return f"peek promise '{self.key}'"


@dataclass(slots=True, kw_only=True)
class CompletePromise(Entry):
    type_name: typing.ClassVar[str] = "complete_promise"
    key: str
    result: bytes | Failure
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.key,)

    def describe(self) -> str:
        return f"complete promise '{self.key}'"


@dataclass(slots=True, kw_only=True)
class CompleteAwakeable(Entry):
    type_name: typing.ClassVar[str] = "complete_awakeable"
    awakeable_id: str
    result: bytes | Failure
    name: str = ""

    def identity(self) -> tuple:
        return (self.awakeable_id,)

    def describe(self) -> str:
        return f"complete awakeable {self.awakeable_id}"


@dataclass(slots=True, kw_only=True)
class SendSignal(Entry):
    type_name: typing.ClassVar[str] = "send_signal"
    target_invocation_id: str
    signal_index: int
    result: bytes | Failure | None = None
    name: str = ""

    def identity(self) -> tuple:
        return (self.target_invocation_id, self.signal_index)

    def describe(self) -> str:
        if self.signal_index == CANCEL_SIGNAL:
            return f"cancel {self.target_invocation_id}"
        return f"signal {self.signal_index} to {self.target_invocation_id}"


@dataclass(slots=True, kw_only=True)
class SendNamedSignal(Entry):
    """Resolve or reject the signal `signal_name` of another invocation (ctx.resolve_signal / reject_signal)."""

    type_name: typing.ClassVar[str] = "send_named_signal"
    target_invocation_id: str
    signal_name: str
    result: bytes | Failure | None = None
    name: str = ""

    def identity(self) -> tuple:
        return (self.target_invocation_id, self.signal_name)

    def describe(self) -> str:
        return f"signal '{self.signal_name}' to {self.target_invocation_id}"


@dataclass(slots=True, kw_only=True)
class AttachInvocation(Entry):
    type_name: typing.ClassVar[str] = "attach_invocation"
    target_invocation_id: str
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.target_invocation_id,)


@dataclass(slots=True, kw_only=True)
class GetInvocationOutput(Entry):
    type_name: typing.ClassVar[str] = "get_invocation_output"
    target_invocation_id: str
    completion_id: int
    name: str = ""

    def identity(self) -> tuple:
        return (self.target_invocation_id,)


# ---------------------------------------------------------------- notifications


@dataclass(slots=True, kw_only=True)
class Completion(Entry):
    """Completes the command that carries `completion_id`."""

    is_command: typing.ClassVar[bool] = False
    type_name: typing.ClassVar[str] = "completion"
    completion_id: int
    result: Result = None


@dataclass(slots=True, kw_only=True)
class Signal(Entry):
    """A signal for this invocation: cancellation (index 1) or an awakeable (17 and up)."""

    is_command: typing.ClassVar[bool] = False
    type_name: typing.ClassVar[str] = "signal"
    signal_index: int
    result: Result = None


@dataclass(slots=True, kw_only=True)
class NamedSignal(Entry):
    """The signal `signal_name` for this invocation, which ctx.signal(name) awaits."""

    is_command: typing.ClassVar[bool] = False
    type_name: typing.ClassVar[str] = "named_signal"
    signal_name: str
    result: Result = None


Notification = typing.Union[Completion, Signal, NamedSignal]

ENTRY_TYPES: tuple[type[Entry], ...] = (
    Input,
    Output,
    Run,
    Sleep,
    Call,
    OneWayCall,
    GetState,
    GetLazyState,
    GetStateKeys,
    GetLazyStateKeys,
    SetState,
    ClearState,
    ClearAllState,
    GetPromise,
    PeekPromise,
    CompletePromise,
    CompleteAwakeable,
    SendSignal,
    AttachInvocation,
    GetInvocationOutput,
    Completion,
    Signal,
    SendNamedSignal,
    NamedSignal,
)


def handle_of(notification: Notification) -> int:
    """The handle a notification completes: completion ids are positive, signals negative."""
    if isinstance(notification, Completion):
        return notification.completion_id
    if isinstance(notification, NamedSignal):
        return named_signal_handle(notification.signal_name)
    return -notification.signal_index


def signal_handle(signal_index: int) -> int:
    return -signal_index


def named_signal_handle(name: str) -> int:
    """The handle of the named signal `name`: the same in every attempt and process, derived from the name.

    A hash, so that a handle needs no table that would have to be journaled too; 48 bits keep a collision
    between the few names one invocation uses out of reach, and the handle within msgpack's int64."""
    digest = hashlib.blake2b(name.encode(), digest_size=6).digest()
    return -(NAMED_SIGNAL_BASE + int.from_bytes(digest, "big"))


def is_named_signal_handle(handle: int) -> bool:
    return handle <= -NAMED_SIGNAL_BASE
