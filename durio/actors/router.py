"""The router: which invocation actors are alive, and how messages reach them.

A message for an invocation with no live actor starts one, which loads the
invocation from storage and takes the message. At most one actor exists per
invocation: actors are registered and deregistered synchronously on the
Trio loop, and an actor deregisters only in the same step in which it
decides to end.

Actors run as children of the runtime's supervisor nursery. The supervisor
restarts an actor that crashes with an unexpected error (a bug, a storage
failure) after a backoff, from what storage holds.
"""

from __future__ import annotations

import logging
import typing

import anyio
import anyio.abc

from durio.actors.invocation import InvocationActor
from durio.actors.keys import KeyActor
from durio.actors.ports import RouterHost
from durio.sdk.invoke import NOT_DECODED
from durio.journal.entries import Entry, Notification
from durio.storage.records import InvocationRecord, Status, TimerKey


log = logging.getLogger("durio.router")

_RESTART_DELAYS = (0.05, 0.2, 1.0, 5.0)


class Router:
    def __init__(self, runtime: RouterHost, nursery: anyio.abc.TaskGroup) -> None:
        self._runtime = runtime
        self._nursery = nursery
        self.actors: dict[str, InvocationActor] = {}
        self.keys: dict[tuple[str, str], KeyActor] = {}
        # Writes an ended actor left in flight; its successor loads only once they are durable.
        self._unfinished_writes: dict[str, typing.Any] = {}
        self._room: anyio.Event | None = None  # set when an actor ends, for whoever waits for room

    def start(
        self, record: InvocationRecord, journal: list[Entry] | None = None, fresh_key_state: dict[str, bytes] | None = None
    ) -> None:
        """Run an invocation that is ready; an actor already alive is told to run it.

        `fresh_key_state`: an exclusive invocation that found its key's inbox empty, with the
        key's state as of that moment (no one else can have written it since).
        """
        if record.is_exclusive and record.target.key is not None:
            self._key(record, fresh=fresh_key_state is not None).admit(record, journal, fresh_key_state)
            return
        self.spawn(record, journal)

    def spawn(
        self,
        record: InvocationRecord,
        journal: list[Entry] | None,
        state: dict[str, bytes] | None = None,
        admitted: bool = False,
        decoded_input: typing.Any = NOT_DECODED,
    ) -> None:
        actor = self.actors.get(record.id)
        if actor is not None:
            actor.run_requested()
            return
        self._spawn(
            InvocationActor(
                self._runtime, record.id, record, journal, state=state, admitted=admitted, decoded_input=decoded_input
            )
        )

    def is_alive(self, invocation_id: str) -> bool:
        return invocation_id in self.actors

    # ------------------------------------------------------------ the resume limit

    def has_room(self, reserved: int = 0) -> bool:
        """Whether timers and recovery may bring one more stored invocation into memory.

        `reserved`: actors the caller has already asked for that do not exist yet.
        """
        return len(self.actors) + reserved < self._runtime.config.resume_limit

    async def wait_for_room(self, reserved: typing.Callable[[], int] = lambda: 0) -> None:
        while not self.has_room(reserved()):
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def room_may_have_changed(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    # ------------------------------------------------------------ keys

    def _key(self, record: InvocationRecord, fresh: bool = False) -> KeyActor:
        address = (record.target.service, typing.cast(str, record.target.key))
        actor = self.keys.get(address)
        if actor is None:
            actor = self.keys[address] = KeyActor(self, *address, knows_whole_queue=fresh)
        return actor

    def enqueue(self, record: InvocationRecord) -> None:
        """An exclusive invocation queued behind its key's holder."""
        self._key(record).enqueue(record)

    def released(self, record: InvocationRecord) -> None:
        actor = self.keys.get((record.target.service, typing.cast(str, record.target.key)))
        if actor is not None:
            actor.released(record.id)

    def handoff(self, holder: InvocationActor) -> None:
        """An exclusive holder recorded its output: its key may run the next one now."""
        target = holder.record.target
        actor = self.keys.get((target.service, typing.cast(str, target.key)))
        if actor is not None:
            actor.handoff(holder.id, holder.state)

    def key_idle(self, actor: KeyActor) -> None:
        if actor.idle and self.keys.get((actor.service, actor.key)) is actor:
            del self.keys[(actor.service, actor.key)]

    def deliver(
        self, invocation_id: str, notification: Notification, outbox_seq: int | None = None, timer: TimerKey | None = None
    ) -> None:
        actor = self.actors.get(invocation_id)
        if actor is None:
            actor = InvocationActor(self._runtime, invocation_id)
            self._spawn(actor)
        actor.deliver(notification, outbox_seq, timer)

    def stop(self, invocation_id: str) -> None:
        actor = self.actors.get(invocation_id)
        if actor is not None:
            actor.stop()

    def actor_exited(self, actor: InvocationActor) -> None:
        if self.actors.get(actor.id) is actor:
            del self.actors[actor.id]
            self.room_may_have_changed()
        record = actor.record
        if record is not None and record.is_exclusive and not actor.handed_off:
            # Suspended, paused or failed: it still holds the key in storage, but nothing runs for it now.
            self.released(record)
        ticket = actor.last_ticket
        if ticket is not None and not ticket.done:
            self._unfinished_writes[actor.id] = ticket

    async def wait_for_predecessor(self, invocation_id: str) -> None:
        """Before loading an invocation, let the writes of its previous actor become durable."""
        ticket = self._unfinished_writes.pop(invocation_id, None)
        if ticket is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await ticket.wait()
                except Exception:
                    pass

    async def _run_if_admitted_meanwhile(self, invocation_id: str) -> None:
        """Run an invocation that storage made its key's holder while its actor, reading it still queued, ended.

        The admission (its predecessor's completion committing) found the actor alive and left it
        running; the actor, acting on its stale read, then gave up its turn. Nothing else would
        start it again: its key actor and its predecessor are done with it.
        """
        record = await self._runtime.get_record(invocation_id)
        if record is not None and record.status in (Status.READY, Status.BACKING_OFF) and invocation_id not in self.actors:
            self.start(record)

    def _spawn(self, actor: InvocationActor) -> None:
        try:
            self._nursery.start_soon(self._supervise, actor, name=f"invocation {actor.id}")
        except RuntimeError:
            # The runtime is stopping (a cluster node's partitions move): a batch that commits now starts
            # nothing; whoever serves the partition next recovers the invocation.
            log.info("not starting %s: the runtime is stopping", actor.id)
            return
        self.actors[actor.id] = actor

    async def _supervise(self, actor: InvocationActor) -> None:
        crashes = 0
        while True:
            try:
                await actor.run()
                if actor.waits_for_turn:
                    await self._run_if_admitted_meanwhile(actor.id)
                return
            except Exception:
                log.exception("the actor of %s crashed; restarting it from storage", actor.id)
            delay = _RESTART_DELAYS[min(crashes, len(_RESTART_DELAYS) - 1)]
            crashes += 1
            await anyio.sleep(delay)
            if actor.id in self.actors:
                return  # something else already started a fresh actor for it
            actor = InvocationActor(self._runtime, actor.id)
            self.actors[actor.id] = actor
