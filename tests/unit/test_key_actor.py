"""The key actor's fast path, as plain method calls against a router (its KeyRouter port) that records what it is asked."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from durio import ids
from durio.actors.keys import KeyActor
from durio.journal.entries import Entry, Input, Target
from durio.storage.records import InvocationRecord, Status


@dataclass
class RecordingRouter:
    """The three things a key actor asks of its router, recorded; `alive` says which actors run."""

    alive: set[str] = field(default_factory=set)
    spawned: list[tuple[str, list[Entry] | None, dict[str, bytes] | None, bool]] = field(default_factory=list)
    idle_keys: list[KeyActor] = field(default_factory=list)

    def is_alive(self, invocation_id: str) -> bool:
        return invocation_id in self.alive

    def spawn(
        self,
        record: InvocationRecord,
        journal: list[Entry] | None,
        state: dict[str, bytes] | None = None,
        admitted: bool = False,
        decoded_input: typing.Any = None,
    ) -> None:
        self.alive.add(record.id)
        self.spawned.append((record.id, journal, state, admitted))

    def key_idle(self, actor: KeyActor) -> None:
        self.idle_keys.append(actor)


def queued(inbox_seq: int) -> InvocationRecord:
    return InvocationRecord(
        id=ids.new_invocation_id("k"),
        target=Target("Counter", "add", "k"),
        handler_kind="exclusive",
        status=Status.PENDING,
        created_ms=0,
        modified_ms=0,
        inbox_seq=inbox_seq,
    )


def key_actor(knows_whole_queue: bool = True) -> tuple[KeyActor, RecordingRouter]:
    router = RecordingRouter()
    return KeyActor(router, "Counter", "k", knows_whole_queue), router


def test_admitting_a_holder_spawns_it_with_its_journal_and_state() -> None:
    actor, router = key_actor()
    holder = queued(1)
    journal: list[Entry] = [Input(value=b"1")]
    actor.admit(holder, journal, {"count": b"1"})
    assert actor.holder == holder.id
    assert router.spawned == [(holder.id, journal, {"count": b"1"}, False)]
    assert not actor.idle


def test_admitting_a_holder_that_already_runs_after_an_early_handoff_does_not_start_it_twice() -> None:
    actor, router = key_actor()
    first, second = queued(1), queued(2)
    actor.admit(first, None)
    actor.enqueue(second)
    actor.handoff(first.id, {})
    actor.admit(second, None)  # the predecessor's completion committed and storage admits the one already running
    assert [spawn[0] for spawn in router.spawned] == [first.id, second.id]


def test_handoff_runs_the_earliest_queued_invocation_at_once_with_a_copy_of_the_holders_state() -> None:
    actor, router = key_actor()
    holder, late, early = queued(1), queued(9), queued(5)
    actor.admit(holder, None)
    actor.enqueue(late)
    actor.enqueue(early)
    state = {"count": b"2"}
    actor.handoff(holder.id, state)
    ((spawned_id, journal, spawned_state, admitted),) = router.spawned[1:]
    assert (spawned_id, journal, spawned_state, admitted) == (early.id, None, {"count": b"2"}, True)
    assert spawned_state is not state, "the successor gets its own copy"
    assert actor.holder == early.id
    assert actor.statistics() == {"holder": early.id, "queued": 1, "knows_whole_queue": True}


def test_enqueueing_the_same_invocation_twice_queues_it_once() -> None:
    actor, _ = key_actor()
    holder, waiting = queued(1), queued(2)
    actor.admit(holder, None)
    actor.enqueue(waiting)
    actor.enqueue(waiting)
    actor.enqueue(holder)
    assert actor.statistics()["queued"] == 1


def test_an_actor_that_does_not_know_the_whole_queue_never_hands_off_early() -> None:
    actor, router = key_actor(knows_whole_queue=False)
    holder, waiting = queued(1), queued(2)
    actor.admit(holder, None)
    actor.enqueue(waiting)
    actor.handoff(holder.id, {"count": b"1"})
    assert [spawn[0] for spawn in router.spawned] == [holder.id]
    assert actor.holder == holder.id


def test_a_handoff_from_an_invocation_that_is_not_the_holder_is_ignored() -> None:
    actor, router = key_actor()
    holder, waiting = queued(1), queued(2)
    actor.admit(holder, None)
    actor.enqueue(waiting)
    actor.handoff(waiting.id, {})
    assert actor.holder == holder.id and len(router.spawned) == 1


def test_a_holder_handing_off_to_nobody_keeps_the_key_actor_alive_until_its_completion_commits() -> None:
    actor, router = key_actor()
    holder = queued(1)
    actor.admit(holder, None)
    actor.handoff(holder.id, {})
    assert actor.holder is None
    assert not actor.idle, "an arrival before the completion commits must still be known"
    assert router.idle_keys == []
    actor.released(holder.id)
    assert actor.idle and router.idle_keys == [actor]


def test_a_queued_invocation_released_before_its_turn_is_forgotten_and_the_holder_keeps_the_key() -> None:
    actor, router = key_actor()
    holder, cancelled, waiting = queued(1), queued(2), queued(3)
    actor.admit(holder, None)
    actor.enqueue(cancelled)
    actor.enqueue(waiting)
    actor.released(cancelled.id)
    assert actor.holder == holder.id and router.idle_keys == []
    actor.handoff(holder.id, {})
    assert router.spawned[-1][0] == waiting.id


def test_releasing_the_last_holder_reports_the_key_idle() -> None:
    actor, router = key_actor(knows_whole_queue=False)
    holder = queued(1)
    actor.admit(holder, None)
    actor.released(holder.id)
    assert actor.holder is None and actor.idle
    assert router.idle_keys == [actor]
