"""The runtime: storage, the supervisor of all actors, the timer actor, and recovery.

The ingress and admin APIs talk to the runtime, never to storage or actors
directly. Everything the runtime changes goes through a transition committed
by the group-commit writer; what a committed transition implies (start an
invocation, deliver a notification, arm a timer, answer a waiting request) is
applied here, on the Trio loop, once the write is durable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import typing

import anyio
import anyio.to_thread
import anyio.abc

from durio import ids
from durio.actors.clock import Clock
from durio.actors.settings import DAY_MS, RuntimeConfig, RuntimeStats
from durio.actors.effects import Applied, Effects, Sequences
from durio.actors.invocation import LiveStatus
from durio.actors.messages import Message, MessageKind
from durio.actors.registry import Registry
from durio.actors.router import Router
from durio.actors.timers import TimerActor
from durio.actors.transitions import (
    WORKFLOW_ALREADY_INVOKED,
    CompleteSignalOutcome,
    ControlAction,
    ControlOutcome,
    Created,
    Transitions,
)
from durio.actors.waiters import CompletionWaiters
from durio.journal.entries import Entry, Failure, Input, Notification, Target
from durio.kinds import HandlerKind
from durio.partitions import PartitionTable
from durio.actors.remote.deployments import Deployment, discover, services_of
from durio.schedules.scheduler import Scheduler
from durio.sdk.definitions import Handler, ServiceDefinition
from durio.sdk.invoke import NOT_DECODED
from durio.sdk.options import Backoff, invocation_backoff
from durio.storage import StorageError, Store, StoreClosed, Ticket, Txn, open_store
from durio.storage.frames import FrameError
from durio.storage.records import InvocationRecord, Status, TimerKey
from durio.telemetry import tracing_from_environment

log = logging.getLogger("durio.runtime")

__all__ = ["DAY_MS", "Runtime", "RuntimeConfig", "RuntimeStats", "open_runtime"]


class PeerLink(typing.Protocol):
    """The other worker processes, as a worker's runtime sees them (durio.workers.peers implements it).

    `forward` runs one of the runtime's verbs in the worker that owns a partition and returns its answer;
    `tell` hands that worker something to do, in order, without waiting."""

    me: typing.Any  # this worker's index (a node's name in a cluster)

    def members(self) -> list[typing.Any]:
        """Every worker (or node) of the server, this one included."""
        ...

    def owner_of(self, partition: int) -> typing.Any: ...

    async def forward(self, worker: typing.Any, verb: str, *args: typing.Any) -> typing.Any: ...

    async def forward_to_owner(self, partition: int, verb: str, *args: typing.Any) -> typing.Any:
        """`forward` to whoever owns the partition now (in a cluster, ownership moves: it follows it)."""
        ...

    def tell(self, worker: typing.Any, verb: str, *args: typing.Any) -> None: ...

    def tell_all(self, verb: str, *args: typing.Any) -> None: ...


class PeerUnavailable(Exception):
    """The worker that owns a partition did not come back in time (the client may retry later)."""


class PeerLost(Exception):
    """The worker died after a request was sent to it: it may or may not have acted on it."""


class RemoteError(Exception):
    """A verb failed in the sibling worker that ran it."""


# What a live actor doing these shows over its invocation's stored status.
_STATUS_SHOWN_FOR = {LiveStatus.RUNNING: Status.RUNNING, LiveStatus.BACKING_OFF: Status.BACKING_OFF}

# How often a worker looks for messages to its partitions that nobody told it about (their sender died first).
MESSAGE_SWEEP_S = 1.0


class Runtime:
    """Whole once constructed: it is built inside the supervisor task group it runs its actors in (run_runtime),
    from what storage says it starts from (`sequences`, `deployments`)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        config: RuntimeConfig,
        supervisor: anyio.abc.TaskGroup,
        clock: Clock,
        sequences: Sequences,
        deployments: dict[str, Deployment],
        partitions: PartitionTable | None = None,
        peers: PeerLink | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self.clock = clock
        self.sequences = sequences
        # The partitions this process owns; the others belong to sibling worker processes, reached through `peers`.
        self.partitions = partitions or PartitionTable.single(config.message_partitions or 1)
        self.peers = peers
        self.transitions = Transitions(
            sequences,
            registry.target_info,
            config.retention_ms,
            config.purge_completed,
            self.partitions,
            messages_between_partitions=config.message_partitions is not None,
        )
        self._supervisor = supervisor
        # Messages between partitions travel (through storage) whenever a partition's owner may be another process.
        self._messages_travel = not self.partitions.owns_all or config.message_partitions is not None
        self._messages_waiting: set[int] = set()
        self._messages_arrived = anyio.Event()
        self.waiters = CompletionWaiters()
        self.stats = RuntimeStats()
        self.deployments = deployments
        self.router = Router(self, supervisor)
        self.timers = TimerActor(self)
        self.schedules = Scheduler(self, supervisor)
        self.recovered = 0
        # Set when storage refuses a batch (a full disk): what was due then is done again once it heals.
        self._storage_failed = anyio.Event()
        self.faults = config.faults
        # OpenTelemetry traces (durio.telemetry), when OTEL_EXPORTER_OTLP_* configures them; None: off, free.
        self.tracing = config.tracing if config.tracing is not None else tracing_from_environment()
        if self.faults is not None:
            store.writer.faults = self.faults
            self.faults.on_crash = store.writer.halt
        store.writer.before_commit = self._persist_sequence
        if not self.partitions.owns_all:
            # Sibling workers write the same storage: every batch starts past the numbers they have used.
            store.backend.before_ops = self._catch_up_sequence

    # ------------------------------------------------------------ running

    async def _start(self) -> None:
        """Start the timers, recover what was running or in flight, and the background duties."""
        await self.schedules.start()  # before any timer fires: it syncs the schedules declared in code
        supervisor = self._supervisor
        await supervisor.start(self.timers.run)
        waiting = await self._recover()
        if waiting:
            supervisor.start_soon(self._resume_when_there_is_room, waiting)
        supervisor.start_soon(self._heal_after_storage_failures)
        if self._messages_travel:
            supervisor.start_soon(self._apply_messages)
            supervisor.start_soon(self._sweep_messages)

    def _persist_sequence(self, txn: Txn) -> None:
        # Every batch records the sequence high-water mark, so numbers are never reused after a restart.
        txn.put_meta("sequence", self.sequences.peek())

    def _catch_up_sequence(self, txn: Txn) -> None:
        self.sequences.advance_past(txn.get_meta("sequence") or 0)

    # ------------------------------------------------------------ messages from other partitions

    def messages_arrived(self, partition: int) -> None:
        """Messages wait for a partition of this worker (a sibling just wrote them)."""
        if partition in self.partitions.owned:
            self._messages_waiting.add(partition)
            self._messages_arrived.set()

    async def _apply_messages(self) -> None:
        while True:
            await self._messages_arrived.wait()
            self._messages_arrived = anyio.Event()
            waiting, self._messages_waiting = self._messages_waiting, set()
            for partition in sorted(waiting):
                op = self.transitions.apply_messages(partition)
                if self.faults is not None:
                    self.faults.hit("message.before_apply")
                try:
                    applied = await self.write(op)
                    if self.faults is not None:
                        self.faults.hit("message.after_apply")
                except StorageError:
                    self._messages_waiting.add(partition)  # the sweep tries again
                    continue
                if applied:
                    self.messages_arrived(partition)  # there may be more than one batch's worth

    async def _sweep_messages(self) -> None:
        """Messages whose sender died before it told this worker: look for them now and then."""
        while True:
            for partition in await self.store.read(lambda txn: txn.partitions_with_messages()):
                self.messages_arrived(partition)
            await anyio.sleep(MESSAGE_SWEEP_S)

    async def _recover(self) -> list[InvocationRecord]:
        """Resume unfinished invocations and redeliver every message in flight.

        Returns the invocations beyond the resume limit, still to be started as actors end.
        """

        runnable, outbox = await self.store.read(self._scan_due_work)
        if self._messages_travel:
            for partition in await self.store.read(lambda txn: txn.partitions_with_messages()):
                self.messages_arrived(partition)
        first = max(0, self.config.resume_limit - len(self.router.actors))
        for record in runnable[:first]:
            self.router.start(record)
        for target_id, seq, notification in outbox:
            self.deliver(target_id, notification, seq)
        self.recovered = len(runnable)
        if runnable or outbox:
            log.info("recovered %d invocations and %d messages in flight", len(runnable), len(outbox))
        return runnable[first:]

    async def _resume_when_there_is_room(self, records: list[InvocationRecord]) -> None:
        for record in records:
            await self.router.wait_for_room()
            self.router.start(record)

    # ------------------------------------------------------------ storage failures

    async def _heal_after_storage_failures(self) -> None:
        """Once storage takes writes again after refusing some, redo what the refused writes left undone.

        A refused batch leaves storage as it was, but work in memory has moved on:
        a timer popped from the window, an outbox message handed to an actor whose
        append failed, a start that never committed. Storage still holds all of it,
        so once a probe write commits the runtime does what a restart would: it
        reloads the timer window, redelivers the outbox and starts runnable
        invocations that no actor runs. Each of those steps is harmless twice.
        """
        while True:
            await self._storage_failed.wait()
            delay_s = 0.05
            while True:
                self._storage_failed = anyio.Event()
                await anyio.sleep(delay_s)
                try:
                    await self.write(_probe_write)
                    break
                except StorageError:
                    delay_s = min(delay_s * 2, 2.0)
            log.warning("storage takes writes again: redoing the work that was due while it refused them")
            await self._redo_due_work()

    def _scan_due_work(self, txn: Txn) -> tuple[list[InvocationRecord], list[tuple[str, int, typing.Any]]]:
        """What should be running or delivered, as storage has it: runnable invocations of this worker's
        partitions, and the whole outbox (a sibling's message is handed to it: its sender may have died
        before it told the sibling)."""
        runnable, _ = txn.invocations_by_status((Status.READY, Status.BACKING_OFF))
        if not self.partitions.owns_all:
            runnable = [record for record in runnable if self.partitions.is_local(record.id)]
        return runnable, list(txn.iter_outbox())

    async def _redo_due_work(self) -> None:
        self.timers.reload()
        runnable, outbox = await self.store.read(self._scan_due_work)
        router = self.router
        for target_id, seq, notification in outbox:
            self.deliver(target_id, notification, seq)
        for record in runnable:
            if router.is_alive(record.id):
                continue
            if (
                record.is_exclusive
                and record.target.key is not None
                and (record.target.service, record.target.key) in router.keys
            ):
                continue  # its key actor knows its queue and admits it in turn
            await router.wait_for_room()
            router.start(record)

    def commit(
        self,
        op: typing.Callable[[Txn], Applied],
        on_commit: typing.Callable[[typing.Any], None] | None = None,
        on_error: typing.Callable[[BaseException], None] | None = None,
    ) -> Ticket:
        """Submit a transition; its effects are applied once durable, then `on_commit(value)` runs."""

        def committed(applied: Applied) -> None:
            self.apply(applied.effects)
            if on_commit is not None:
                on_commit(applied.value)

        def failed(error: BaseException) -> None:
            if isinstance(error, StorageError) and not isinstance(error, StoreClosed):
                self._storage_failed.set()
            if on_error is not None:
                on_error(error)

        return self.store.submit(op, committed, failed)

    async def write(self, op: typing.Callable[[Txn], Applied]) -> typing.Any:
        """Commit a transition and return its value once durable."""
        applied = await self.commit(op).wait()
        return applied.value

    def apply(self, effects: Effects) -> None:
        for record, journal in effects.start:
            self.router.start(record, journal, fresh_key_state=effects.fresh_holders.get(record.id))
        for record in effects.enqueue:
            self.router.enqueue(record)
        for target_id, seq, notification in effects.deliver:
            self.deliver(target_id, notification, seq)
        for timer in effects.timers:
            self.add_timer(timer)
        for partition in effects.messages:
            self._tell_owner(partition, "messages_arrived", partition)
        self.stats.created += effects.created
        for invocation_id, result in effects.completed:
            if isinstance(result, Failure):
                self.stats.completed_failure += 1
            else:
                self.stats.completed_success += 1
            self.waiters.complete(invocation_id, result)
        for invocation_id in effects.stop:
            self.router.stop(invocation_id)
        for record in effects.released:
            self.router.released(record)

    def deliver(self, target_id: str, notification: Notification, outbox_seq: int) -> None:
        """Hand an outbox message to its invocation's actor, here or in the worker that owns it."""
        if self.partitions.is_local(target_id):
            self.router.deliver(target_id, notification, outbox_seq=outbox_seq)
        else:
            self._tell_owner(self.partitions.of_id(target_id), "deliver", target_id, notification, outbox_seq)

    def add_timer(self, timer: TimerKey) -> None:
        if self.partitions.is_local(timer.invocation_id):
            self.timers.add(timer)
        else:
            self._tell_owner(self.partitions.of_id(timer.invocation_id), "add_timer", timer)

    def _tell_owner(self, partition: int, verb: str, *args: typing.Any) -> None:
        if partition in self.partitions.owned and verb == "messages_arrived":
            self.messages_arrived(partition)
            return
        if self.peers is None:
            log.error("no worker to tell about partition %d (%s)", partition, verb)
            return
        self.peers.tell(self.peers.owner_of(partition), verb, *args)

    def _owner_elsewhere(self, invocation_id: str) -> int | None:
        """This invocation's partition, when another worker owns it."""
        if self.peers is None or self.partitions.is_local(invocation_id):
            return None
        return self.partitions.of_id(invocation_id)

    async def load_invocation(self, invocation_id: str) -> tuple[InvocationRecord, list[Entry]] | None:
        """An invocation and its journal; one that cannot be read is failed for good, with the reason."""

        def load(txn: Txn) -> tuple[InvocationRecord, list[Entry]] | None | FrameError:
            try:
                record = txn.get_invocation(invocation_id)
                return None if record is None else (record, txn.journal(invocation_id))
            except (FrameError, LookupError) as exc:
                return FrameError(str(exc))

        loaded = await self.store.read(load)
        if isinstance(loaded, FrameError):
            log.error("invocation %s cannot be read and fails: %s", invocation_id, loaded)
            await self.write(self.transitions.fail_unreadable(invocation_id, str(loaded), self.clock.now_ms()))
            return None
        return loaded

    async def register_deployment(
        self, uri: str, additional_headers: dict[str, str] | None = None, use_http_11: bool = False
    ) -> tuple[Deployment, bool]:
        """Discover an endpoint and serve its services; (deployment, True if new)."""
        deployment = await discover(
            uri,
            self.clock.now_ms(),
            additional_headers,
            self.config.request_identity_key,
            use_http_11,
            self.config.deployment_ca_file,
        )
        previous = next((d for d in self.deployments.values() if d.uri == deployment.uri), None)
        if previous is not None:
            deployment.id = previous.id
            deployment.created_ms = previous.created_ms
        services = services_of(deployment)
        self.registry.check_remote(services)
        await self.write(self.transitions.save_deployment(deployment.to_record(), previous.id if previous else None))
        self.registry.add_remote(services)
        self.deployments[deployment.id] = deployment
        await self.deployments_changed_everywhere()
        return deployment, previous is None

    async def deployments_changed_everywhere(self) -> None:
        """Have every sibling worker serve the deployments storage has now, before the change is acknowledged
        (a worker that is restarting reads them as it starts)."""
        if self.peers is None:
            return
        for worker in self.peers.members():
            if worker == self.peers.me:
                continue
            with anyio.move_on_after(5.0):
                try:
                    await self.peers.forward(worker, "reload_deployments")
                except (PeerLost, PeerUnavailable, RemoteError) as exc:
                    log.warning("worker %s did not reload the deployments: %s", worker, exc)

    async def reload_deployments(self) -> None:
        """Serve the deployments storage has now (a sibling worker registered or removed one)."""
        stored = {d.id: d for d in (Deployment.from_record(r) for r in await self.store.read(lambda txn: txn.deployments()))}
        for gone in set(self.deployments) - set(stored):
            deployment = self.deployments.pop(gone)
            self.registry.remove_remote(
                {
                    service.name
                    for service in services_of(deployment)
                    if getattr(self.registry.service(service.name), "deployment", None) is deployment
                }
            )
        for deployment_id, deployment in stored.items():
            known = self.deployments.get(deployment_id)
            if known is None or known.to_record() != deployment.to_record():
                self.registry.add_remote(services_of(deployment))
                self.deployments[deployment_id] = deployment

    def backoff_for(self, handler: Handler) -> Backoff:
        service = self.registry.service(handler.service_name)
        policies = (handler.invocation_retry_policy, getattr(service, "invocation_retry_policy", None))
        if all(p is None for p in policies):
            return self.config.invocation_backoff
        return invocation_backoff(*policies)

    def suspend_after_for(self, handler: Handler) -> float | None:
        """How long an in-process handler may wait (on anything but a running step) before it is suspended:
        its own inactivity_timeout, else its service's (Restate's per-handler option), else suspend_after_s."""
        timeout = handler.options.get("inactivity_timeout")
        if timeout is None:
            timeout = getattr(self.registry.service(handler.service_name), "inactivity_timeout", None)
        return self.config.suspend_after_s if timeout is None else timeout.total_seconds()

    # ------------------------------------------------------------ invoking

    def new_invocation(
        self,
        target: Target,
        handler: Handler,
        body: bytes,
        headers: list[tuple[str, str]],
        idempotency_key: str | None = None,
        delay_ms: int = 0,
    ) -> tuple[InvocationRecord, Input]:
        now = self.clock.now_ms()
        if handler.kind == HandlerKind.WORKFLOW:
            invocation_id = ids.workflow_run_id(target.service, typing.cast(str, target.key))
        elif idempotency_key is not None:
            invocation_id = ids.idempotent_invocation_id(target, idempotency_key)
        else:
            invocation_id = ids.new_invocation_id(target.key, now, self.partitions.local_partition_key())
        record = InvocationRecord(
            id=invocation_id,
            target=target,
            handler_kind=handler.kind,
            status=Status.READY,
            created_ms=now,
            modified_ms=now,
            idempotency_key=idempotency_key,
            execute_at_ms=self.clock.due_ms(delay_ms) if delay_ms > 0 else 0,
            retention_ms=self.registry.retention_ms(handler, idempotent=idempotency_key is not None),
        )
        return record, Input(ts=now, value=body, headers=headers)

    def _submit_creation(
        self, record: InvocationRecord, input_entry: Input, decoded: typing.Any = NOT_DECODED, fresh: bool = True
    ) -> Ticket:
        """Submit an invocation's creation; a fresh one that needs no admission starts right away.

        An invocation with a random id cannot collide with an existing one, and a
        plain (non-exclusive, not delayed) one needs no key or timer: its actor can
        run while the creation is being committed. Its own writes queue behind the
        creation, so none of them can become durable before it; if the creation
        fails, the actor is stopped. Idempotent, workflow, exclusive and delayed
        invocations wait for the commit, which decides whether and when they run.
        """
        early = (
            fresh
            and record.idempotency_key is None
            and record.handler_kind not in (HandlerKind.EXCLUSIVE, HandlerKind.WORKFLOW)
            and not record.execute_at_ms
        )
        if not early:
            return self.commit(self.transitions.create(record, input_entry))
        ticket = self.commit(
            self.transitions.create(record, input_entry, started=True),
            on_error=lambda _: self.router.stop(record.id),
        )
        self.router.spawn(record, [input_entry], decoded_input=decoded)
        return ticket

    async def call(
        self, record: InvocationRecord, input_entry: Input, decoded: typing.Any = NOT_DECODED, fresh: bool = True
    ) -> tuple[str, bytes | Failure]:
        """Create (or find) the invocation and wait for its result.

        `fresh`: the record's id was never submitted before. A request forwarded from a sibling worker may be
        sent again (its first owner died), so its creation waits for the commit that says whether it is new."""
        owner = self._owner_elsewhere(record.id)
        if owner is not None:
            return typing.cast(tuple[str, typing.Union[bytes, Failure]], await self._forward(owner, "call", record, input_entry))
        slot = self.waiters.register(record.id)
        try:
            created: Created = (await self._submit_creation(record, input_entry, decoded, fresh).wait()).value
            existing = created.record
            if not created.created:
                if existing.is_workflow_run:
                    return existing.id, WORKFLOW_ALREADY_INVOKED
                if existing.is_completed:
                    return existing.id, typing.cast(typing.Union[bytes, Failure], existing.result)
            return existing.id, await slot.wait()
        finally:
            self.waiters.unregister(record.id, slot)

    async def send(
        self, record: InvocationRecord, input_entry: Input, decoded: typing.Any = NOT_DECODED, fresh: bool = True
    ) -> tuple[InvocationRecord, bool]:
        """Create (or find) the invocation; True when this request created it (`fresh`: as for call)."""
        owner = self._owner_elsewhere(record.id)
        if owner is not None:
            return typing.cast(tuple[InvocationRecord, bool], await self._forward(owner, "send", record, input_entry))
        created: Created = (await self._submit_creation(record, input_entry, decoded, fresh).wait()).value
        return created.record, created.created

    async def attach(self, invocation_id: str) -> bytes | Failure | None:
        """Wait for an invocation's result; None when no such invocation exists."""
        owner = self._owner_elsewhere(invocation_id)
        if owner is not None:
            return typing.cast(typing.Union[bytes, Failure, None], await self._forward(owner, "attach", invocation_id))
        slot = self.waiters.register(invocation_id)
        try:
            record, on_its_way = await self.store.read(lambda txn: self._invocation_or_its_creation(txn, invocation_id))
            while on_its_way:
                # Sent by an invocation of another partition, it is created once its message is applied (soon).
                await anyio.sleep(0.005)
                record, on_its_way = await self.store.read(lambda txn: self._invocation_or_its_creation(txn, invocation_id))
            if record is None:
                return None
            if record.is_completed:
                return typing.cast(typing.Union[bytes, Failure], record.result)
            return await slot.wait()
        finally:
            self.waiters.unregister(invocation_id, slot)

    def _invocation_or_its_creation(self, txn: Txn, invocation_id: str) -> tuple[InvocationRecord | None, bool]:
        """The invocation's record; or, when it does not exist, whether a message that creates it waits."""
        record = txn.get_invocation(invocation_id)
        if record is not None or not self._messages_travel:
            return record, False
        for _, raw in txn.messages_for(self.partitions.of_id(invocation_id), limit=10_000):
            try:
                message = Message.decode(raw, "a message")
            except FrameError:
                continue
            if message.kind == MessageKind.INVOKE and message.target_id == invocation_id:
                return None, True
        return None, False

    async def control(self, invocation_id: str, action: ControlAction | str) -> ControlOutcome:
        """An operator's action on one invocation: cancel, kill, pause, resume or purge (ValueError for another)."""
        action = ControlAction(action)
        owner = self._owner_elsewhere(invocation_id)
        if owner is not None:
            return typing.cast(ControlOutcome, await self._forward(owner, "control", invocation_id, action))
        now = self.clock.now_ms()
        transitions = self.transitions
        op = {
            ControlAction.CANCEL: lambda: transitions.cancel(invocation_id, now),
            ControlAction.KILL: lambda: transitions.kill(invocation_id, now),
            ControlAction.PURGE: lambda: transitions.purge(invocation_id),
            ControlAction.PAUSE: lambda: transitions.pause(invocation_id, now),
            ControlAction.RESUME: lambda: transitions.resume(invocation_id, now),
        }[action]()
        return typing.cast(ControlOutcome, await self.write(op))

    async def complete_awakeable(self, awakeable_id: str, result: bytes | Failure) -> CompleteSignalOutcome:
        """Resolve or reject an awakeable. InvalidId for a bad id."""
        target_id, _ = ids.parse_awakeable_id(awakeable_id)
        owner = self._owner_elsewhere(target_id)
        if owner is not None:
            return typing.cast(CompleteSignalOutcome, await self._forward(owner, "complete_awakeable", awakeable_id, result))
        return typing.cast(CompleteSignalOutcome, await self.write(self.transitions.complete_awakeable(awakeable_id, result)))

    async def _forward(self, partition: int, verb: str, *args: typing.Any) -> typing.Any:
        """Run a verb in the worker that owns its partition. If that worker dies before it answers, the verb
        is sent again to its successor: each verb is idempotent on the same arguments (a call or send carries
        its invocation's id, which the first attempt may have created already)."""
        assert self.peers is not None
        while True:
            try:
                return await self.peers.forward_to_owner(partition, verb, *args)
            except PeerLost as exc:
                log.warning("%s; sending %s again once it is back", exc, verb)

    async def get_record(self, invocation_id: str) -> InvocationRecord | None:
        return await self.store.read(lambda txn: txn.get_invocation(invocation_id))

    def live_status(self, record: InvocationRecord) -> Status:
        """The status a human should see: stored status, refined by what the actors are doing now."""
        actor = self.router.actors.get(record.id)
        if record.is_completed or actor is None:
            return record.status
        return _STATUS_SHOWN_FOR.get(actor.status, record.status)

    def live_statuses(self) -> dict[str, Status]:
        """A snapshot, by invocation id, of the statuses live actors show over the stored ones (as live_status)."""
        return {
            invocation_id: _STATUS_SHOWN_FOR[actor.status]
            for invocation_id, actor in self.router.actors.items()
            if actor.status in _STATUS_SHOWN_FOR
        }

    async def all_live_statuses(self) -> dict[str, Status]:
        """live_statuses of every worker (each knows only the actors it runs); a restarting one has none."""
        statuses = self.live_statuses()
        if self.peers is None:
            return statuses
        for worker in self.peers.members():
            if worker == self.peers.me:
                continue
            with anyio.move_on_after(2.0):
                try:
                    statuses.update(await self.peers.forward(worker, "live_statuses"))
                except (PeerLost, PeerUnavailable, RemoteError):
                    pass
        return statuses

    async def status_shown(self, record: InvocationRecord) -> Status:
        """live_status, wherever the invocation's actor runs."""
        if self.peers is None or self.partitions.is_local(record.id) or record.is_completed:
            return self.live_status(record)
        return (await self.all_live_statuses()).get(record.id, record.status)

    def local_snapshot(self) -> dict[str, typing.Any]:
        """This worker's live counters, for /metrics and /cluster (each worker has its own)."""
        live = [actor.status for actor in self.router.actors.values()]
        writer = self.store.writer.statistics()
        stats = self.stats
        return {
            "worker": self.peers.me if self.peers is not None else 0,
            "pid": os.getpid(),
            "partitions": sorted(self.partitions.owned),
            "created": stats.created,
            "completed_success": stats.completed_success,
            "completed_failure": stats.completed_failure,
            "journal_appends": stats.journal_appends,
            "attempt_failures": stats.attempt_failures,
            "actors": len(live),
            "running": live.count(LiveStatus.RUNNING),
            "backing_off": live.count(LiveStatus.BACKING_OFF),
            "timers": len(self.timers),
            "writer_batches": writer.batches,
            "writer_ops": writer.ops,
            "writer_queued": writer.queued,
        }

    async def worker_snapshots(self) -> list[dict[str, typing.Any]]:
        """Every worker's local_snapshot; a worker being restarted is listed with its index only."""
        if self.peers is None:
            return [self.local_snapshot()]
        found: list[dict[str, typing.Any]] = []
        for worker in self.peers.members():
            if worker == self.peers.me:
                found.append(self.local_snapshot())
                continue
            with anyio.move_on_after(2.0):
                try:
                    found.append(await self.peers.forward(worker, "snapshot"))
                    continue
                except (PeerLost, PeerUnavailable, RemoteError):
                    pass
            found.append({"worker": worker, "pid": None, "partitions": [], "restarting": True})
        return found

    def log_actors_in_memory(self, most: int = 20) -> None:
        """At shutdown: the invocations still in memory and where each stands (an operator's and a soak's clue)."""
        actors = list(self.router.actors.values())
        if actors:
            log.info(
                "%d invocations in memory at shutdown%s:\n  %s",
                len(actors),
                f" (the first {most})" if len(actors) > most else "",
                "\n  ".join(actor.describe() for actor in actors[:most]),
            )


def _probe_write(txn: Txn) -> Applied:
    """The smallest write that goes through the whole commit path: does storage take writes?"""
    txn.put_meta("storage_probe", 1)
    return Applied(None, Effects())


async def run_runtime(
    store: Store,
    registry: Registry,
    config: RuntimeConfig,
    partitions: PartitionTable | None,
    peers: PeerLink | None,
    *,
    task_status: anyio.abc.TaskStatus[Runtime] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Read what the runtime starts from, build it inside its supervisor, start it, and run it until cancelled."""
    clock = Clock(config.clock_start_s)
    high_water = await store.read(lambda txn: txn.get_meta("sequence") or 0)
    deployments: dict[str, Deployment] = {}
    for record in await store.read(lambda txn: txn.deployments()):
        deployment = Deployment.from_record(record)
        deployments[deployment.id] = deployment
        registry.add_remote(services_of(deployment))
    async with anyio.create_task_group() as supervisor:
        runtime = Runtime(store, registry, config, supervisor, clock, Sequences(high_water + 1), deployments, partitions, peers)
        await runtime._start()
        task_status.started(runtime)
        await anyio.sleep_forever()


@contextlib.asynccontextmanager
async def open_runtime(
    services: typing.Iterable[ServiceDefinition],
    data_dir: str | os.PathLike[str],
    config: RuntimeConfig | None = None,
    partitions: PartitionTable | None = None,
    peers: PeerLink | None = None,
) -> typing.AsyncIterator[Runtime]:
    """Run durio's runtime (storage, actors, timers) for the duration of the block."""
    config = config or RuntimeConfig()
    registry = Registry(
        services,
        default_retention_ms=config.retention_ms,
        idempotency_retention_ms=config.idempotency_retention_ms,
        workflow_retention_ms=config.workflow_retention_ms,
    )
    async with open_store(data_dir, sync=config.sync, map_size=config.map_size, durability=config.durability) as store:
        async with anyio.create_task_group() as nursery:
            runtime = await nursery.start(run_runtime, store, registry, config, partitions, peers)
            try:
                yield runtime
            finally:
                runtime.log_actors_in_memory()
                nursery.cancel_scope.cancel()
        if runtime.tracing is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(runtime.tracing.shutdown)  # export what is buffered
