"""What each actor needs of the runtime around it, as small typing.Protocols.

The runtime is the composition root: it builds the router, the timer actor,
the scheduler and the invocation actors, and hands each of them itself. Each
of them sees only the port below that names what it uses, so none imports the
runtime module (there is no import cycle through it, TYPE_CHECKING imports
included), and a unit test can give one a small stand-in.
"""

from __future__ import annotations

import typing

from durio.actors.clock import Clock
from durio.actors.effects import Applied
from durio.actors.registry import Registry
from durio.actors.settings import RuntimeConfig, RuntimeStats
from durio.actors.transitions import Transitions
from durio.journal.entries import Entry, Failure, Notification
from durio.partitions import PartitionTable
from durio.sdk.definitions import Handler
from durio.sdk.options import Backoff
from durio.storage import Store, Ticket, Txn
from durio.storage.records import InvocationRecord, TimerKey

Op = typing.Callable[[Txn], Applied]


class EndedActor(typing.Protocol):
    """An invocation actor as the router sees it when it hands its key on or ends."""

    @property
    def id(self) -> str: ...
    @property
    def record(self) -> InvocationRecord | None: ...
    @property
    def state(self) -> dict[str, bytes]: ...
    @property
    def handed_off(self) -> bool: ...
    @property
    def last_ticket(self) -> Ticket | None: ...


class ActorRouter(typing.Protocol):
    """The router, as invocation actors and the timer actor use it."""

    def deliver(
        self, invocation_id: str, notification: Notification, outbox_seq: int | None = None, timer: TimerKey | None = None
    ) -> None: ...
    def handoff(self, holder: typing.Any) -> None: ...
    def actor_exited(self, actor: typing.Any) -> None: ...
    async def wait_for_predecessor(self, invocation_id: str) -> None: ...
    def is_alive(self, invocation_id: str) -> bool: ...
    def has_room(self, reserved: int = 0) -> bool: ...
    async def wait_for_room(self, reserved: typing.Callable[[], int] = ...) -> None: ...
    def room_may_have_changed(self) -> None: ...


class KeyRouter(typing.Protocol):
    """The router, as a key actor uses it."""

    def is_alive(self, invocation_id: str) -> bool: ...
    def spawn(
        self,
        record: InvocationRecord,
        journal: list[Entry] | None,
        state: dict[str, bytes] | None = None,
        admitted: bool = False,
        decoded_input: typing.Any = ...,
    ) -> None: ...
    def key_idle(self, actor: typing.Any) -> None: ...


class TimerWindow(typing.Protocol):
    def add(self, timer: TimerKey) -> None: ...


class ActorHost(typing.Protocol):
    """What an invocation actor needs: storage and its transitions, the clock, the registry, its router."""

    @property
    def config(self) -> RuntimeConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def store(self) -> Store: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def transitions(self) -> Transitions: ...
    @property
    def router(self) -> ActorRouter: ...
    @property
    def timers(self) -> TimerWindow: ...
    @property
    def stats(self) -> RuntimeStats: ...
    @property
    def faults(self) -> typing.Any: ...  # a durio.actors.faults.FaultPlan in fault-injection tests
    @property
    def tracing(self) -> typing.Any: ...  # a durio.telemetry.spans.Tracing when OpenTelemetry is on

    def commit(
        self,
        op: Op,
        on_commit: typing.Callable[[typing.Any], None] | None = None,
        on_error: typing.Callable[[BaseException], None] | None = None,
    ) -> Ticket: ...
    async def load_invocation(self, invocation_id: str) -> tuple[InvocationRecord, list[Entry]] | None: ...
    def backoff_for(self, handler: Handler) -> Backoff: ...
    def suspend_after_for(self, handler: Handler) -> float | None: ...


class RouterHost(ActorHost, typing.Protocol):
    """What the router needs: what it gives the actors it starts, and a fresh read of a record."""

    async def get_record(self, invocation_id: str) -> InvocationRecord | None: ...


class ScheduleFiring(typing.Protocol):
    def fire(self, timer: TimerKey, now_ms: int) -> None: ...


class TimerHost(typing.Protocol):
    """What the timer actor needs: the stored timers of this worker's partitions and what firing one does."""

    @property
    def clock(self) -> Clock: ...
    @property
    def store(self) -> Store: ...
    @property
    def partitions(self) -> PartitionTable: ...
    @property
    def router(self) -> ActorRouter: ...
    @property
    def transitions(self) -> Transitions: ...
    @property
    def schedules(self) -> ScheduleFiring: ...
    @property
    def faults(self) -> typing.Any: ...

    def commit(
        self,
        op: Op,
        on_commit: typing.Callable[[typing.Any], None] | None = None,
        on_error: typing.Callable[[BaseException], None] | None = None,
    ) -> Ticket: ...


class SchedulerHost(typing.Protocol):
    """What the scheduler needs: storage, the clock, the registry, and waiting for an invocation's end."""

    @property
    def clock(self) -> Clock: ...
    @property
    def store(self) -> Store: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def transitions(self) -> Transitions: ...
    @property
    def partitions(self) -> PartitionTable: ...

    def commit(
        self,
        op: Op,
        on_commit: typing.Callable[[typing.Any], None] | None = None,
        on_error: typing.Callable[[BaseException], None] | None = None,
    ) -> Ticket: ...
    async def write(self, op: Op) -> typing.Any: ...
    async def attach(self, invocation_id: str) -> bytes | Failure | None: ...


class DeploymentHost(typing.Protocol):
    """What removing a deployment needs."""

    @property
    def deployments(self) -> dict[str, typing.Any]: ...
    @property
    def registry(self) -> Registry: ...

    async def write(self, op: Op) -> typing.Any: ...
    async def deployments_changed_everywhere(self) -> None: ...
